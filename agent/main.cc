#include <CLI/CLI.hpp>

#include "agent/cli.h"

int main(int argc, char** argv) {
  CLI::App app{
      "slotguard-agent: moves Redis Cluster hash slots in guarded, journaled batches that roll "
      "back instead of losing keys."};
  app.set_version_flag("--version", std::string("slotguard-agent ") + SLOTGUARD_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  slotguard::agent::RegisterEngineCommands(app, exit_code);
  slotguard::agent::RegisterDaemonCommands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors exit 1 like every other error, never 2 (2 means "rolled back").
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  return exit_code;
}
