#include "common/web_config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/yaml_reader.h"

namespace slotguard::common {
namespace {

constexpr const char* kClientAuthNames[] = {"NoClientCert", "RequestClientCert",
                                            "RequireAnyClientCert", "VerifyClientCertIfGiven",
                                            "RequireAndVerifyClientCert"};

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

std::string DirOf(const std::string& file) {
  const auto slash = file.rfind('/');
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : file.substr(0, slash);
}

// "$2y$10$" + 53 characters of bcrypt's base64 (22 of salt, 31 of hash).
bool IsBcryptHash(const std::string& hash) {
  if (hash.size() != 60 || hash.compare(0, 2, "$2") != 0) return false;
  if (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') return false;
  if (hash[3] != '$' || hash[6] != '$') return false;
  if (hash[4] < '0' || hash[4] > '3' || hash[5] < '0' || hash[5] > '9') return false;
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) return false;
  for (size_t i = 7; i < hash.size(); ++i) {
    const char c = hash[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '/';
    if (!ok) return false;
  }
  return true;
}

TlsServerConfig ReadTls(const YamlReader& reader, const YAML::Node& node,
                        const std::string& base_dir) {
  const std::string path = "tls_server_config";
  reader.ExpectMap(node, path,
                   {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"});
  TlsServerConfig tls;
  if (!node["cert_file"]) reader.Fail(node, path + ".cert_file", "required");
  if (!node["key_file"]) reader.Fail(node, path + ".key_file", "required");
  tls.cert_file = Resolve(base_dir, reader.NonEmptyString(node["cert_file"], path + ".cert_file"));
  tls.key_file = Resolve(base_dir, reader.NonEmptyString(node["key_file"], path + ".key_file"));
  if (node["client_ca_file"]) {
    tls.client_ca_file =
        Resolve(base_dir, reader.NonEmptyString(node["client_ca_file"], path + ".client_ca_file"));
  }
  if (node["client_auth_type"]) {
    const YAML::Node& n = node["client_auth_type"];
    const std::string name = reader.String(n, path + ".client_auth_type");
    bool found = false;
    std::string list;
    for (size_t i = 0; i < std::size(kClientAuthNames); ++i) {
      list += (list.empty() ? "" : ", ") + std::string(kClientAuthNames[i]);
      if (name == kClientAuthNames[i]) {
        tls.client_auth_type = static_cast<ClientAuthType>(i);
        found = true;
      }
    }
    if (!found) reader.Fail(n, path + ".client_auth_type", "'" + name + "' is not one of " + list);
  }
  const bool verifies = tls.client_auth_type == ClientAuthType::kVerifyClientCertIfGiven ||
                        tls.client_auth_type == ClientAuthType::kRequireAndVerifyClientCert;
  if (verifies && tls.client_ca_file.empty()) {
    reader.Fail(node, path + ".client_ca_file",
                std::string("required with client_auth_type ") +
                    kClientAuthNames[static_cast<int>(tls.client_auth_type)] +
                    " (the CA that signs client certificates)");
  }
  if (!verifies && !tls.client_ca_file.empty()) {
    // exporter-toolkit refuses this too: a CA that nothing checks against looks like protection.
    reader.Fail(node["client_ca_file"], path + ".client_ca_file",
                "given, but client_auth_type is not VerifyClientCertIfGiven or "
                "RequireAndVerifyClientCert, so no client certificate would be checked against it");
  }
  if (node["min_version"]) {
    const YAML::Node& n = node["min_version"];
    const std::string v = reader.String(n, path + ".min_version");
    if (v == "TLS10") {
      tls.min_version = TlsVersion::kTls10;
    } else if (v == "TLS11") {
      tls.min_version = TlsVersion::kTls11;
    } else if (v == "TLS12") {
      tls.min_version = TlsVersion::kTls12;
    } else if (v == "TLS13") {
      tls.min_version = TlsVersion::kTls13;
    } else {
      reader.Fail(n, path + ".min_version", "'" + v + "' is not one of TLS10, TLS11, TLS12, TLS13");
    }
  }
  return tls;
}

}  // namespace

Result<WebConfig> ParseWebConfig(const std::string& text, const std::string& file) {
  YamlReader reader(file);
  try {
    const YAML::Node root = reader.Parse(text);
    WebConfig config;
    if (!root || root.IsNull()) return config;
    reader.ExpectMap(root, "", {"tls_server_config", "basic_auth_users"});
    const std::string base_dir = DirOf(file);
    if (const YAML::Node tls = root["tls_server_config"]) {
      config.tls = ReadTls(reader, tls, base_dir);
    }
    if (const YAML::Node users = root["basic_auth_users"]) {
      if (!users.IsNull() && !users.IsMap()) {
        reader.Fail(users, "basic_auth_users", "expected a map of user: bcrypt hash");
      }
      for (const auto& item : users) {
        const YAML::Node& key = item.first;
        const std::string user = reader.String(key, "basic_auth_users");
        const std::string field = "basic_auth_users." + user;
        if (user.empty()) reader.Fail(key, "basic_auth_users", "a user name must not be empty");
        // Basic auth sends "user:password": a colon in the name could never match.
        if (user.find(':') != std::string::npos) reader.Fail(key, field, "must not contain ':'");
        if (config.basic_auth_users.count(user)) reader.Fail(key, field, "duplicate user");
        const std::string hash = reader.String(item.second, field);
        // The hash itself stays out of the message: it is a secret's derivative.
        if (!IsBcryptHash(hash)) {
          reader.Fail(item.second, field,
                      "not a bcrypt hash ($2y$, $2b$ or $2a$ with a cost of 04-31, 60 "
                      "characters; make one with `htpasswd -nBC 10 USER`)");
        }
        config.basic_auth_users.emplace(user, hash);
      }
    }
    return config;
  } catch (const YamlFieldError& e) {
    return MakeError(e.what());
  }
}

namespace {

Result<void> CheckReadable(const std::string& config, const std::string& key,
                           const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return MakeError(config + ": " + key + ": cannot read " + path + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace

Result<WebConfig> LoadWebConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return MakeError("cannot read web config " + path + ": " + std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto config = ParseWebConfig(text.str(), path);
  if (!config) return config;
  if (config->tls) {
    const TlsServerConfig& tls = *config->tls;
    for (const auto& [key, file] :
         {std::pair<std::string, std::string>{"tls_server_config.cert_file", tls.cert_file},
          {"tls_server_config.key_file", tls.key_file},
          {"tls_server_config.client_ca_file", tls.client_ca_file}}) {
      if (file.empty()) continue;
      if (auto ok = CheckReadable(path, key, file); !ok) return tl::unexpected(ok.error());
    }
  }
  return config;
}

std::string DescribeWebConfig(const WebConfig& config) {
  std::string out;
  if (config.tls) {
    out = "TLS";
    if (config.tls->client_auth_type != ClientAuthType::kNoClientCert) {
      out += std::string(" (client certificates: ") +
             kClientAuthNames[static_cast<int>(config.tls->client_auth_type)] + ")";
    }
  }
  if (!config.basic_auth_users.empty()) {
    out += (out.empty() ? "" : ", ") + std::string("basic auth (") +
           std::to_string(config.basic_auth_users.size()) +
           (config.basic_auth_users.size() == 1 ? " user)" : " users)");
  }
  return out.empty() ? "no TLS, no auth" : out;
}

}  // namespace slotguard::common
