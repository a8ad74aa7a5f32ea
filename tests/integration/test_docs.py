"""
test_docs.py - the shipped configuration (packaging/gatehouse.conf) and gatehouse.conf(5)
(packaging/man/gatehouse.conf.5) against the daemon's own directive table.

The table is read out of daemon/cfg.c (cfg_directives[]), so a directive added there without
its man page entry, or without its place in the shipped file, fails here. The shipped file must
pass `gatehouse -t`, and so must the file with every commented-out directive line switched on
(the examples an admin is invited to uncomment). The values the shipped file shows commented out
must be the defaults the man page gives, where the man page gives a plain value.
"""

import os
import pathlib
import pwd
import re
import shutil
import subprocess
import tempfile

import pytest

import ghtest

CFG_C = os.path.join(ghtest.REPO, "daemon", "cfg.c")
CACHECFG_C = os.path.join(ghtest.REPO, "daemon", "cachecfg.c")
SHIPPED = os.path.join(ghtest.REPO, "packaging", "gatehouse.conf")
MAN5 = os.path.join(ghtest.REPO, "packaging", "man", "gatehouse.conf.5")


def read(path):
    with open(path) as f:
        return f.read()


def directive_table():
    """[(name, context)] from cfg_directives[] in daemon/cfg.c; context is TOP or SECTION."""
    src = read(CFG_C)
    m = re.search(r"cfg_directives\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert m, "cfg_directives[] not found in daemon/cfg.c"
    out = []
    for ln in m.group(1).splitlines():
        ln = ln.strip()
        if not ln or ln.startswith("/*") or ln.startswith("//"):
            continue
        if ln.startswith('"'):
            continue  # the rest of an entry (a default too long for its line: CFG_FND, CFG_NUMD)
        e = re.match(r'(?:CFG_FND?|CFG_NUMD?)?\(?\s*\{?\s*"(\w+)".*CFG_IN_(TOP|SECTION)', ln)
        if e is None:
            e = re.match(r'CFG_NUMD?\("(\w+)"', ln)
            assert e, "cannot read this cfg_directives[] line: %r" % ln
            out.append((e.group(1), "TOP"))  # CFG_NUM entries are top-level
        else:
            out.append((e.group(1), e.group(2)))
    return out


def man_entries():
    """{directive name: text of its .TP entry} from gatehouse.conf(5). An entry is a .TP
    paragraph; its tag line (and .TQ lines) name the directive(s) as the first word."""
    lines = read(MAN5).splitlines()
    entries = {}
    i = 0
    while i < len(lines):
        if lines[i] in (".TP", ".TQ"):
            names = []
            j = i + 1
            # the tag line, and .TQ tag lines directly after it
            while j < len(lines):
                tag = lines[j]
                m = re.match(r'\.(?:B|BI|BR|I|IR)\s+"?([A-Za-z]+)', tag)
                if m:
                    names.append(m.group(1))
                j += 1
                if j < len(lines) and lines[j] == ".TQ":
                    j += 1
                    continue
                break
            k = j
            while k < len(lines) and not re.match(r"\.(TP|SS|SH|PP)\b", lines[k]):
                k += 1
            body = "\n".join(lines[j:k])
            for n in names:
                entries[n] = body
            i = k
        else:
            i += 1
    return entries


def man_default(body):
    m = re.search(r"^Default: (.*?)\.(?:\s|$)", body, re.M | re.S)
    return m and re.sub(r"\\(.)", r"\1", m.group(1)).replace("\n", " ").strip()


def shipped_lines():
    """[(commented, name, args)] for every directive line of the shipped file, active or
    commented out ("#Name args", no blank after the #)."""
    out = []
    for ln in read(SHIPPED).splitlines():
        m = re.match(r"^(#?)\s*([A-Za-z]+)(\s.*)?$", ln)
        if m and (not m.group(1) or re.match(r"#[A-Z]", ln)):
            out.append((bool(m.group(1)), m.group(2), (m.group(3) or "").strip()))
    return out


def test_directive_table_is_read_and_cachecfg_names_are_in_it():
    names = [n for n, _ in directive_table()]
    assert len(names) == len(set(names)), names
    # a reader that found nothing, or only half, must not pass the tests below
    for known in ("Listen", "Workers", "DNSCacheTTL", "ProxyBlock", "PacFile", "CacheRoot",
                  "CacheDebianArchive", "Include", "Require", "Satisfy"):
        assert known in names, "%s not read from cfg_directives[]: %s" % (known, names)
    # every Cache* name cachecfg.c handles is reachable from the table
    cache_names = set(re.findall(r'strcasecmp\(d, "(Cache\w+)"\)', read(CACHECFG_C)))
    assert len(cache_names) >= 15, cache_names
    assert cache_names <= set(names), cache_names - set(names)
    # ... and the others are Apache's, accepted without effect by cfg.c (issue 9)
    no_effect = set(re.findall(r'CFG_FND?\("(Cache\w+)", cfg_d_no_effect', read(CFG_C)))
    assert {"CacheDirLevels", "CacheLock", "CacheQuickHandler"} <= no_effect, no_effect
    assert {n for n in names if n.startswith("Cache")} - no_effect == cache_names


def test_every_directive_has_a_man_page_entry_with_its_default():
    entries = man_entries()
    missing = [n for n, _ in directive_table() if n not in entries]
    assert not missing, "gatehouse.conf(5) has no entry for %s" % missing
    # Top-level directives give a default; Include has none (it does something, once).
    nodefault = [n for n, ctx in directive_table()
                 if ctx == "TOP" and n not in ("Include", "IncludeOptional")
                 and not man_default(entries[n])]
    assert not nodefault, "no \"Default:\" in the gatehouse.conf(5) entry of %s" % nodefault


def test_every_directive_is_in_the_shipped_config():
    text = read(SHIPPED)
    lines = {name for _, name, _ in shipped_lines()}
    missing = []
    for name, ctx in directive_table():
        if ctx == "TOP":
            if name not in lines:  # as a line of its own, active or commented out
                missing.append(name)
        elif not re.search(r"\b%s\b" % name, text):  # section rules: explained in comments
            missing.append(name)
    assert not missing, "packaging/gatehouse.conf does not show %s" % missing


def section_names():
    """The section names cfg.c opens (<Proxy>, <ProxyMatch>, <Limit>, <LimitExcept>)."""
    names = set(re.findall(r'strcasecmp\(name, "(\w+)"\)', read(CFG_C)))
    assert {"Proxy", "ProxyMatch"} <= names, names
    return names


def test_every_section_is_documented_and_explained_in_the_shipped_config():
    man, shipped = read(MAN5), read(SHIPPED)
    for name in section_names():
        assert re.search(r"<%s[ >]" % name, man), "gatehouse.conf(5) does not show <%s>" % name
        assert re.search(r"<%s[ >]" % name, shipped), "packaging/gatehouse.conf lacks <%s>" % name


def test_no_placeholders_left():
    for path in (SHIPPED, MAN5):
        assert "TODO" not in read(path), path


def test_commented_out_values_are_the_documented_defaults():
    entries = man_entries()
    descriptive = {"none", "unset", "one", "the", "standard"}
    checked, wrong = 0, []
    for commented, name, args in shipped_lines():
        if not commented or name not in entries:
            continue
        d = man_default(entries[name])
        if not d or d.split()[0].lower() in descriptive or len(d.split()) > 3:
            continue  # not a plain value ("one per CPU", "127.0.0.1:3128 when ..."): an example
        checked += 1
        if args.split() != d.split():
            wrong.append("#%s %s (the man page says %s)" % (name, args, d))
    assert checked >= 20, checked
    assert not wrong, wrong


def shipped_for_this_machine(text, tmp_path):
    """The shipped file with User/Group made valid here: _gatehouse exists only once the
    package is installed (the name is looked up when the file is loaded). Its Include lines
    read an empty copy of /etc/gatehouse under tmp_path, not this machine's conf.d, which
    holds an admin's files where the package is installed."""
    etc = tmp_path / "etc-gatehouse"
    (etc / "conf.d").mkdir(parents=True, exist_ok=True)
    text = text.replace("/etc/gatehouse/", str(etc) + "/")
    try:
        pwd.getpwnam("_gatehouse")
        return text
    except KeyError:
        return text.replace("\nUser _gatehouse\n", "\nUser nobody\n").replace(
            "\nGroup _gatehouse\n", "\nGroup nogroup\n")


def check(gh_bin, path):
    p = subprocess.run([gh_bin, "-t", "-f", path], capture_output=True, text=True, timeout=20,
                       env=ghtest.clean_env())
    return p.returncode, p.stdout + p.stderr


@pytest.fixture
def readable_tmp():
    """A directory every user may read: -t checks, as the shipped User, that the daemon could
    read the file again on reload (pytest's tmp_path is private to root)."""
    d = tempfile.mkdtemp(prefix="gh-docs-")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_gatehouse_t_accepts_the_shipped_config(gh_bin, readable_tmp):
    tmp_path = readable_tmp
    text = read(SHIPPED)
    assert "\nUser _gatehouse\n" in text and "\nGroup _gatehouse\n" in text
    conf = tmp_path / "gatehouse.conf"
    conf.write_text(shipped_for_this_machine(text, tmp_path))
    rc, out = check(gh_bin, str(conf))
    assert rc == 0 and out == "Syntax OK\n", out  # no policy warnings either


def test_gatehouse_t_accepts_the_shipped_config_with_every_example_switched_on(gh_bin,
                                                                          readable_tmp):
    tmp_path = readable_tmp
    pac = tmp_path / "proxy.pac"
    pac.write_text('function FindProxyForURL(url, host) { return "DIRECT"; }\n')
    # The TLS examples name Debian's places for a certificate and key; here a self-signed
    # pair made now stands in for every PEM file they name (read by -t, as root and as User).
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o644)
    both = tmp_path / "both.pem"
    both.write_text(cert.read_text() + key.read_text())
    etc = tmp_path / "etc-gatehouse"
    tls_files = {"/etc/ssl/certs/gatehouse.pem": str(cert),
                 "/etc/ssl/private/gatehouse.key": str(key),
                 "/etc/ssl/certs/gatehouse-chain.pem": str(cert),
                 str(etc) + "/corp-ca.pem": str(cert),
                 str(etc) + "/client.pem": str(both)}
    out_lines, switched = [], 0
    for ln in shipped_for_this_machine(read(SHIPPED), tmp_path).splitlines():
        for shipped, here in tls_files.items():
            if ln.startswith("#SSL") and ln.endswith(" " + shipped):
                ln = ln[:-len(shipped)] + here
        if re.match(r"#[A-Z][A-Za-z]+(\s|$)", ln):
            ln = ln[1:]
            switched += 1
            if ln.startswith("PacFile "):
                ln = "PacFile %s" % pac
        out_lines.append(ln)
    assert switched >= 40, switched
    conf = tmp_path / "all.conf"
    conf.write_text("\n".join(out_lines) + "\n")
    rc, out = check(gh_bin, str(conf))
    assert rc == 0 and out.endswith("Syntax OK\n"), out


def test_license_file_matches_debian_copyright():
    """LICENSE at the top of the tree and the package's DEP-5 copyright file say the same:
    MIT, the same holder and year, the same licence text."""
    lic = read(os.path.join(ghtest.REPO, "LICENSE"))
    dep5 = read(os.path.join(ghtest.REPO, "packaging", "debian", "copyright"))
    holder = re.search(r"^Copyright \(c\) (\d{4} .+)$", lic, re.M)
    assert holder, "no Copyright line in LICENSE"
    stanzas = re.findall(r"^Files: .*\nCopyright: (.*)\nLicense: (.*)$", dep5, re.M)
    assert stanzas and all(s == (holder.group(1), "MIT") for s in stanzas), (holder.group(1),
                                                                             stanzas)
    body = re.search(r"^License: MIT\n((?: .*\n?)+)", dep5[dep5.index("\n\nLicense: MIT") + 2:],
                     re.M)
    assert body, "no stand-alone MIT licence paragraph in debian/copyright"
    text = "\n".join("" if ln == " ." else ln[1:] for ln in body.group(1).rstrip("\n").split("\n"))
    norm = lambda s: " ".join(s.split())
    assert norm(text) in norm(lic) and len(norm(text)) > 900, "LICENSE and debian/copyright differ"
