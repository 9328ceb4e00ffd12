#pragma once

#include <CLI/CLI.hpp>

namespace slotguard::agent {

// Each family of subcommands registers itself on the app; the callbacks set `exit_code`.
// check, reshard, plan: the engine in the foreground (cli_engine.cc).
void RegisterEngineCommands(CLI::App& app, int& exit_code);
// run, enqueue, status, approve, pause, resume, rollback: the daemon (cli_daemon.cc).
void RegisterDaemonCommands(CLI::App& app, int& exit_code);

}  // namespace slotguard::agent
