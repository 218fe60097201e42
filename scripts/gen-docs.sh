#!/bin/sh
# gen-docs.sh LOGSHIP - print docs/plugins.md, the parameter reference, from
# the binary's own tables (`make docs` writes it; tests/integration/test_docs.py
# checks the committed file is current). Output depends only on the plugin
# tables, never on the date or the machine, so regenerating is reproducible.
set -eu

bin=${1:?usage: gen-docs.sh LOGSHIP}
list=$("$bin" --list-plugins)

cat <<'HEAD'
# Plugin reference

Generated from the parameter tables compiled into logship by `make docs`
(`scripts/gen-docs.sh`); do not edit by hand. The same tables validate the
configuration and print `logship --describe NAME`.

Columns: the parameter's name, its type (`size` takes `8m`, `1g`; `time`
takes `10s`, `1h`, `0.5`; `bool` takes `true`/`false`; `array` a JSON array
or `a,b`; `hash` a JSON object or `k:v,k2:v2`), the default (`(required)`
when there is none and the parameter must be given; `-` when unset), the
v0.12 names also accepted, and what it does.

HEAD

echo "## Contents"
echo
for kind in input parser filter formatter output; do
    names=$(printf '%s\n' "$list" | awk -v k="$kind" '$1 == k { print $2 }')
    [ -n "$names" ] || continue
    printf -- '- %s:' "$kind"
    sep=' '
    for n in $names; do
        printf '%s[`%s`](#%s-%s)' "$sep" "$n" "$kind" "$n"
        sep=', '
    done
    echo
done
echo '- common: [`<buffer>`](#buffer-parameters), [`<inject>`](#inject-parameters), [parsers](#common-parser-parameters)'
echo

for kind in input parser filter formatter output; do
    for n in $(printf '%s\n' "$list" | awk -v k="$kind" '$1 == k { print $2 }'); do
        "$bin" --describe-md "$kind:$n"
    done
done
for common in buffer inject parse; do
    "$bin" --describe-md "$common"
done
