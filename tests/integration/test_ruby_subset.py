"""record_transformer's enable_ruby beyond the method chains: the Ruby subset of
agent/rbexpr.c. Each expression's expected value is what real fluentd 1.15.3 (Ruby 3.1)
gave for the same record and tag in a side-by-side run (DROPPED: Ruby raised, and fluentd
sent the record to its error stream instead of the output; logship does the same). Every
expression gets its own <label> so that one raising does not hide the others."""
import json, os

from lstest import conf, run, tmpdir, write

REC = {"message": "Hello World foo", "level": "WARN", "n": 42, "f": 3.5,
       "path": "/var/log/app/x.log", "tags": ["a", "b"], "obj": {"k": "v", "n": 1}, "empty": "",
       "nil": None, "event_type": "USER_START", "t": 1704164645.25}
DROPPED = object()

CASES = [
    ("tag_parts[1..-1].join('.')", 'app.web'),
    ("tag_parts[0..1].join('-')", 'docker-app'),
    ('record["event_type"] == "USER_START" ? "logon" : "logoff"', 'logon'),
    ('record["path"].split(/[\\W]/).reject(&:empty?).first', 'var'),
    ('record["message"].split(" ")[1]', 'World'),
    ('record["message"].downcase.gsub(/o/, "0")', 'hell0 w0rld f00'),
    ('record["n"] * 2 + 1', 85),
    ('record["n"].to_s + "x"', '42x'),
    ('"#{tag}-#{record["level"].downcase}"', 'docker.app.web-warn'),
    ('record["tags"].join(",")', 'a,b'),
    ('record["obj"]["k"]', 'v'),
    ('record.dig("obj", "n")', 1),
    ('record["nil"].nil? ? "none" : "some"', 'none'),
    ('record["level"] =~ /WA/ ? 1 : 0', 1),
    ('record["message"].length', 15),
    ('record["f"].round', 4),
    ('record["f"] / 2', 1.75),
    ('record["n"] / 5', 8),
    ('record["n"] % 5', 2),
    ('time.to_i % 60', 5),
    ('Time.at(time).utc.strftime("%Y-%m-%dT%H:%M:%S.%3NZ")', '2024-01-02T03:04:05.250Z'),
    ('record["message"].sub("Hello", "Bye")', 'Bye World foo'),
    ('record["message"].include?("World")', True),
    ('record["message"].start_with?("Hell")', True),
    ('record["tags"].map(&:upcase)', ['A', 'B']),
    ('record["tags"].length', 2),
    ('tag_suffix[1]', 'app.web'),
    ('record["message"][0, 5]', 'Hello'),
    ('record["message"][-3..-1]', 'foo'),
    ('record.keys.first', 'message'),
    ('record["missing"] || "default"', 'default'),
    ('record["level"] && record["level"].downcase', 'warn'),
    ('record["empty"].empty?', True),
    ('t = time.to_i; t * 1000', 1704164645000),
    ('[record["level"], record["n"]].join(":")', 'WARN:42'),
    ('record["path"].split("/").last', 'x.log'),
    ('record["message"].split.length', 3),
    ('record["n"].to_f', 42.0),
    ('record["f"].to_i', 3),
    ('record["message"].upcase[0..2]', 'HEL'),
    ('!record["empty"].empty?', False),
    ('record["n"] > 40 ? "big" : "small"', 'big'),
    ('record.fetch("level", "x")', 'WARN'),
    ('record["tags"].inspect', '["a", "b"]'),
    ('record["obj"]', {'k': 'v', 'n': 1}),
    ('record["message"].gsub(/(\\w+) (\\w+)/, \'\\2 \\1\')', 'World Hello foo'),
    ('record["tags"]', ['a', 'b']),
    ('record["n"] - 50', -8),
    ('-record["n"]', -42),
    ('record["f"] * 2', 7.0),
    ('tag_prefix[1]', 'docker.app'),
    ('record["level"].capitalize', 'Warn'),
    ('"a" * 3', 'aaa'),
    ('record["message"].split("o", 2)', ['Hell', ' World foo']),
    ('record["message"].reverse', 'oof dlroW olleH'),
    ('record["path"].end_with?(".log")', True),
    ('record["n"].to_s.rjust(5, "0")', '00042'),
    ('record["nil"].to_s', ''),
    ('time.utc.iso8601(3)', '2024-01-02T03:04:05.250Z'),
    ('time.strftime("%s")', '1704164645'),
    ('record["missing"].to_i', 0),
    ('record["tags"].length', 2),
    ('record["obj"].length', 2),
    ('record["n"].to_s.rjust(5, "0")', '00042'),
    ('record["level"].ljust(6, ".")', 'WARN..'),
    ('record["nil"].length', DROPPED),
    ('record["missing"].upcase', DROPPED),
    ('record["n"] / 0', DROPPED),
    ('record["message"].split(/\\s+/).map(&:downcase).join("_")', 'hello_world_foo'),
    ('record["obj"].keys.join(",")', 'k,n'),
    ('record["obj"].values', ['v', 1]),
    ('record["tags"][0].upcase', 'A'),
    ('record["tags"].first(1)', ['a']),
    ('record["tags"].include?("a")', True),
    ('record["message"] =~ /World/', 6),
    ('record["message"] !~ /xyz/', True),
    ('record["f"].floor', 3),
    ('record["f"].ceil', 4),
    ('record["n"].between?(1, 100)', True),
    ('record["level"] == "WARN" && record["n"] > 10', True),
    ('record["level"] != "WARN" || record["n"] == 42', True),
    ('record["path"].sub(/^\\/var\\/log\\//, "")', 'app/x.log'),
    ('record["message"].count("o")', 4),
    ('record["message"].index("World")', 6),
    ('record["n"].to_s(2)', '101010'),
    ('record["message"].scan(/o/).length', 4),
    ('record["message"].tr("o", "0")', 'Hell0 W0rld f00'),
    ('record["tags"].to_a.size', 2),
    ('record["message"].strip.empty? ? nil : record["message"]', 'Hello World foo'),
    ('record["level"].downcase.to_sym', 'warn'),
    ('"#{record["n"]}ms"', '42ms'),
    ("'prefix-' + tag", 'prefix-docker.app.web'),
    ('record["message"][/W\\w+/]', 'World'),
    ('record["t"]', None),
    ('time', '2024-01-02 03:04:05 +0000'),
    ('Time.at(record["t"]).utc.iso8601', DROPPED),
    ('record["tags"].reverse.join("|")', 'b|a'),
    ('(record["n"] + 8) / 10 * 10', 50),
    ('2 ** 10', 1024),
    ('record["f"] ** 2', 12.25),
    ('record["message"].split(" ").map(&:length)', [5, 5, 3]),
    ('record["tags"].map(&:to_s).join', 'ab'),
    ('record["obj"].dig("n")', 1),
    ('record.dig("obj", "missing", "x")', None),
    ('record["n"].to_s.length', 2),
    ('Time.at(record["message"].match(/(\\w+) (\\w+)/)[2].length).utc.iso8601 rescue nil', '1970-01-01T00:00:05Z'),
    ('record["message"].match(/(W\\w+)/)[1]', 'World'),
    ('record["message"].match(/zzz/)', None),
    ('record["nil"].upcase rescue "was nil"', 'was nil'),
    ('record["message"].match(/(\\w+) (\\w+)/).to_s', 'Hello World'),
]


def test_ruby_subset_values_as_fluentd_computed_them():
    d = tmpdir()
    parts = []
    for i, (expr, _) in enumerate(CASES):
        write(os.path.join(d, f"in{i}.log"), json.dumps(REC) + "\n")
        parts.append(f"""
<source>
  @type tail
  path {d}/in{i}.log
  pos_file {d}/pos{i}
  read_from_head true
  tag docker.app.web
  @label @L{i}
  <parse>
    @type json
    time_key t
    time_type float
  </parse>
</source>
<label @L{i}>
  <filter **>
    @type record_transformer
    enable_ruby true
    renew_record true
    <record>
      i {i}
      v ${{{expr}}}
    </record>
  </filter>
  <match **>
    @type stdout
  </match>
</label>""")
    p = run(["-c", conf("\n".join(parts), d), "--oneshot"], env=dict(os.environ, TZ="UTC"),
            timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    got = {}
    for line in p.stdout.splitlines():
        if "docker.app.web: {" in line:
            r = json.loads(line.split(": ", 1)[1])
            got[int(r["i"])] = r.get("v")
    bad = []
    for i, (expr, want) in enumerate(CASES):
        if want is DROPPED:
            if i in got:
                bad.append((expr, "should have raised", got[i]))
        elif got.get(i, DROPPED) != want:
            bad.append((expr, want, got.get(i, "<dropped>")))
    assert bad == [], bad
