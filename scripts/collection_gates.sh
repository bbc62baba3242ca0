#!/usr/bin/env bash
# Quality gates of the redhat.cluster collection, in order:
#   sanity  ansible-test sanity --venv --python 3.11 (empty ignore files)
#   units   ansible-test units  --venv --python 3.11 (module_utils and modules, fake runners)
#   doc     ansible-doc renders every module
#   build   ansible-galaxy collection build into a temporary directory
# Usage: scripts/collection_gates.sh [GATE ...]   (default: all four)
# Prints "gate NAME: ok|FAILED in SECONDS s" per gate and exits non-zero if any failed.
# Needs the project venv (make setup). ansible-test --venv downloads a get-pip bootstrap
# script from a host this machine cannot reach: the offline stand-in
# scripts/get_pip_standin.py is copied to the cache path ansible-test 2.19 reads
# (get_pip_24_2.py, pip 24.2) before the first ansible-test call.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
venv=$top/.venv
coll=$top/collections/ansible_collections/redhat/cluster
if [ ! -x "$venv/bin/ansible-test" ]; then
    echo "collection_gates: $venv/bin/ansible-test is missing: run scripts/setup.sh (make setup) first" >&2
    exit 2
fi
export PATH=$venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$top/collections
export ANSIBLE_NOCOLOR=1

pip_version=$("$venv/bin/python" - <<'EOF'
import re, pathlib, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
EOF
)
getpip=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
if ! cmp -s "$top/scripts/get_pip_standin.py" "$getpip"; then
    mkdir -p "$(dirname "$getpip")"
    cp "$top/scripts/get_pip_standin.py" "$getpip"
fi

gate_sanity() {
    (cd "$coll" && ansible-test sanity --venv --python 3.11 --color no)
}

gate_units() {
    (cd "$coll" && ansible-test units --venv --python 3.11 --color no)
}

gate_doc() {
    # One ansible-doc process for every module (it exits non-zero naming any that fails).
    local modules
    modules=$(cd "$coll/plugins/modules" && ls -- *.py | sed 's/^/redhat.cluster./; s/\.py$//')
    [ -n "$modules" ] || { echo "no modules found" >&2; return 1; }
    # shellcheck disable=SC2086  # one word per module name
    ansible-doc $modules >/dev/null && echo "ansible-doc rendered:" $modules
}

gate_build() {
    local out
    out=$(mktemp -d)
    trap 'rm -rf "$out"' RETURN
    ansible-galaxy collection build "$coll" --output-path "$out" &&
        ls "$out"/redhat-cluster-*.tar.gz
}

gates=("$@")
[ ${#gates[@]} -gt 0 ] || gates=(sanity units doc build)
failed=()
for gate in "${gates[@]}"; do
    if ! declare -F "gate_$gate" >/dev/null; then
        echo "collection_gates: unknown gate '$gate' (known: sanity units doc build)" >&2
        exit 2
    fi
    start=$(date +%s.%N)
    if "gate_$gate"; then status=ok; else status=FAILED; failed+=("$gate"); fi
    end=$(date +%s.%N)
    awk -v g="$gate" -v s="$status" -v a="$start" -v b="$end" \
        'BEGIN { printf "gate %s: %s in %.1f s\n", g, s, b - a }'
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "collection_gates: failed: ${failed[*]}" >&2
    exit 1
fi
