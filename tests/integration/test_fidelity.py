"""fluentd's own behaviour where logship differed (issue 13), one test per behaviour, each
checked against what fluentd's code does (noted beside it)."""
import json, os, sys
import lstest
from lstest import conf, run, tmpdir

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_core import oneshot  # noqa: E402


def _grep(section):
    recs = [{"n": 1}, {"n": 2, "nokey": "v"}, {"n": 3, "nokey": ""}]
    p, out = oneshot(f"""
<source>
  @type sample
  tag t
  sample {json.dumps(recs)}
  count 3
  rate 100
</source>
<filter t>
  @type grep
  {section}
</filter>
<match t>
  @type stdout
</match>
""")
    assert p.returncode == 0, p.stderr
    return sorted(r["n"] for _, r in out)


def test_grep_matches_a_missing_key_as_the_empty_string():
    # filter_grep: pattern.match(key.call(record).to_s): a missing key is nil, nil.to_s is ""
    assert _grep("<regexp>\n    key nokey\n    pattern /^$/\n  </regexp>") == [1, 3]
    assert _grep("<exclude>\n    key nokey\n    pattern /^$/\n  </exclude>") == [2]
    assert _grep("<regexp>\n    key nokey\n    pattern /./\n  </regexp>") == [2]
