#!/usr/bin/env bash
# One idempotent setup step for demo, tests and benchmarks: pinned Debian packages for the
# lab, and a virtual environment at .venv with pinned Python packages and the daemon
# installed editable. Fast when already done (stamp files keyed by the pin lists' hashes).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
stamp_dir=.venv/.stamps

want_apt=$(sha256sum scripts/apt-packages.txt | cut -c1-16)
if [ ! -f "$stamp_dir/apt-$want_apt" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: the lab needs root (apt-get, namespaces, systemd-nspawn); run as root" >&2
        exit 1
    fi
    mapfile -t pkgs < <(grep -vE '^\s*(#|$)' scripts/apt-packages.txt)
    missing=()
    for p in "${pkgs[@]}"; do
        name=${p%%=*} ver=${p#*=}
        have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
        [ "$have" = "install ok installed $ver" ] || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup: installing ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
fi

pip_inputs=(requirements.txt daemon/pyproject.toml)
[ -f tests/lab/pyproject.toml ] && pip_inputs+=(tests/lab/pyproject.toml)
want_pip=$(cat "${pip_inputs[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$stamp_dir/pip-$want_pip" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
    .venv/bin/pip install -q --disable-pip-version-check --no-deps -e daemon
    if [ -f tests/lab/pyproject.toml ]; then
        .venv/bin/pip install -q --disable-pip-version-check --no-deps -e tests/lab
    fi
fi
# ansible-test --venv downloads a get-pip script from a host this machine cannot reach; give
# it an offline stand-in (pip version as pinned inside ansible-test 2.19).
getpip=~/.ansible/test/cache/get_pip_24_2.py
if ! cmp -s scripts/get_pip_standin.py "$getpip"; then
    mkdir -p "$(dirname "$getpip")"
    cp scripts/get_pip_standin.py "$getpip"
fi

mkdir -p "$stamp_dir"
touch "$stamp_dir/apt-$want_apt" "$stamp_dir/pip-$want_pip"
