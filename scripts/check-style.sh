#!/bin/sh
# check-style.sh: the house style that a tool can check (../shared/style.md item 15), over the
# C sources: 4-space indent (no tabs), no trailing white space, no CR, /* */ comments only, and
# lines of at most 100 columns in new code (the hard limit here is 130: older code has lines up
# to 125 that are not worth a reformat; see git's "avoid useless code churn"). The banned libc
# functions are refused by the compiler itself (agent/banned.h). Exit 1 on any finding.
set -u
cd "$(dirname "$0")/.."
files=$(git ls-files 'agent/*.[ch]' 'plugins/*.[ch]' 'tests/unit/*.[ch]' 'tests/fuzz/*.[ch]' \
        'tests/tools/*.[ch]' 'tests/bench/*.[ch]' 2>/dev/null)
[ -n "$files" ] || { echo "check-style: no C sources found (not a git checkout?)" >&2; exit 1; }
bad=0
report() { echo "$1" | sed 's/^/check-style: /'; bad=1; }
# shellcheck disable=SC2086
out=$(grep -n "$(printf '\t')" $files) && report "$out
  (tabs: indent with 4 spaces)"
out=$(grep -nE ' +$' $files) && report "$out
  (trailing white space)"
out=$(grep -n "$(printf '\r')" $files) && report "$out
  (CR line ends)"
out=$(grep -nE '^\s*//' $files) && report "$out
  (// comment: use /* */)"
out=$(awk 'length > 130 { printf "%s:%d: %d columns\n", FILENAME, FNR, length }' $files) && [ -n "$out" ] \
    && report "$out
  (over 130 columns)"
[ $bad = 0 ] && echo "check-style: $(echo "$files" | wc -l) files clean"
exit $bad
