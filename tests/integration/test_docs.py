"""docs/plugins.md is generated from the plugins' parameter tables
(`make docs`, scripts/gen-docs.sh); this checks the committed file is what
the binary under test generates, so the reference never drifts from the
code, and that the generated Markdown is well formed.
"""
import os, re, subprocess
import lstest
from lstest import ROOT, LOGSHIP

DOC = os.path.join(ROOT, "docs", "plugins.md")

def generate():
    p = subprocess.run(["sh", os.path.join(ROOT, "scripts", "gen-docs.sh"), LOGSHIP],
                       capture_output=True, text=True, timeout=120, env=lstest.sanitizer_env())
    lstest.check_sanitizer(p.stderr, "gen-docs.sh")
    assert p.returncode == 0, p.stderr
    return p.stdout

def test_committed_reference_is_current():
    fresh = generate()
    assert os.path.exists(DOC), "docs/plugins.md is missing: run make docs"
    committed = lstest.read(DOC)
    if fresh != committed:
        a, b = committed.splitlines(), fresh.splitlines()
        i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
        raise AssertionError("docs/plugins.md is out of date: run make docs "
                             f"(first difference at line {i + 1}: committed "
                             f"{a[i] if i < len(a) else '<end>'!r}, generated "
                             f"{b[i] if i < len(b) else '<end>'!r})")

def test_every_plugin_has_a_section_and_tables_are_well_formed():
    doc = generate()
    listing = subprocess.run([LOGSHIP, "--list-plugins"], capture_output=True, text=True).stdout
    plugins = [l.split()[:2] for l in listing.splitlines() if l.strip()]
    assert len(plugins) >= 10
    for kind, name in plugins:
        assert f"## {kind} `{name}`\n" in doc, f"no section for {kind} {name}"
        assert f"(#{kind}-{name})" in doc, f"no contents link for {kind} {name}"
    for title in ("`<buffer>` parameters", "`<inject>` parameters", "Common parser parameters"):
        assert f"## {title}\n" in doc, title
    # a known table, row by row: name | type | default | aliases | description
    assert re.search(r"^\| bind \| string \| 127\.0\.0\.1 \| - \| .+ \|$", doc, re.M), "monitor_agent's bind row"
    assert re.search(r"^\| port \| integer \| 24220 \| - \| .+ \|$", doc, re.M), "monitor_agent's port row"
    for line in doc.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) == 5, f"table row with {len(cells)} cells: {line}"
    # links point at headings that exist (GitHub's anchor rules for these headings)
    anchors = set()
    for h in re.findall(r"^## (.+)$", doc, re.M):
        a = re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-")
        anchors.add(a)
    for link in re.findall(r"\]\(#([^)]+)\)", doc):
        assert link in anchors, f"dangling link #{link}"
