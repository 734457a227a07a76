#!/usr/bin/env bash
# Installs what Aion needs to build and test on a Debian machine, if missing:
# Erlang/OTP and Elixir, the sqlite3 CLI (Debian packages), and checks for
# Rust (cargo).
# Sourced by the other scripts; safe to run again.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# elixir brings Erlang/OTP; sqlite3 (the CLI) lets tests damage a store on purpose.
missing=()
command -v mix >/dev/null 2>&1 || missing+=(elixir)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> Installing from Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "Aion builds its core with Rust, and cargo was not found." >&2
  echo "Install Rust from https://rustup.rs (rustup), then run this again." >&2
  exit 1
fi

# Mix wants a UTF-8 locale; fresh containers often have none.
export LC_ALL="${LC_ALL:-C.UTF-8}"
export LANG="${LANG:-C.UTF-8}"
