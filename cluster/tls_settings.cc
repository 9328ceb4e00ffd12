#include "cluster/tls_settings.h"

namespace slotguard::cluster {

TlsSettings MergeTls(TlsSettings base, const TlsOverrides& over) {
  if (over.ca_file) base.ca_file = *over.ca_file;
  if (over.cert_file) base.cert_file = *over.cert_file;
  if (over.key_file) base.key_file = *over.key_file;
  if (over.server_name) base.server_name = *over.server_name;
  if (over.insecure_skip_verify) base.insecure_skip_verify = *over.insecure_skip_verify;
  return base;
}

Result<std::optional<TlsSettings>> TlsForSeeds(const std::vector<SeedAddress>& seeds,
                                               const TlsSettings& settings, bool settings_given) {
  size_t tls = 0;
  for (const auto& seed : seeds) tls += seed.tls ? 1 : 0;
  if (tls != 0 && tls != seeds.size()) {
    return MakeError(
        "seeds mix rediss:// (TLS) with plain addresses; a cluster speaks one or the other: write "
        "every seed as rediss://host:port or none");
  }
  if (tls == 0) {
    if (settings_given) {
      return MakeError(
          "TLS settings are given but no seed is rediss://; write the seeds as rediss://host:port "
          "to reach the cluster over TLS");
    }
    return std::optional<TlsSettings>();
  }
  if (settings.cert_file.empty() != settings.key_file.empty()) {
    return MakeError(settings.cert_file.empty()
                         ? "a TLS key file is given without a certificate file (cert-file)"
                         : "a TLS certificate file is given without its key file (key-file)");
  }
  return std::optional<TlsSettings>(settings);
}

std::string DescribeTls(const std::optional<TlsSettings>& tls) {
  if (!tls) return "plain text";
  std::string out = "TLS (CA " + (tls->ca_file.empty() ? "the system's trust store" : tls->ca_file);
  if (!tls->cert_file.empty()) out += ", client certificate " + tls->cert_file;
  if (!tls->server_name.empty()) out += ", server name " + tls->server_name;
  out += tls->insecure_skip_verify ? ", certificates NOT checked)" : ", certificates checked)";
  return out;
}

}  // namespace slotguard::cluster
