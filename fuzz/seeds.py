#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (committed).

Run from anywhere: python3 fuzz/seeds.py. Files are named by what they
are; libFuzzer adds its own (hash-named) files when a run is pointed at a
corpus directory, so run fuzzers with a scratch directory first (see
RELIABILITY.md) and copy only minimised finds back here.
"""
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
E = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
H2 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
A = "1" * 40

def pkt(s):
    b = s if isinstance(s, bytes) else s.encode()
    return b"%04x" % (len(b) + 4) + b

def lines(*ls):
    out = b""
    for l in ls:
        out += {"|": b"0001", ".": b"0000"}.get(l) or pkt(l + "\n")
    return out

def varint(v):
    out = b""
    while True:
        b = v & 0x7F; v >>= 7
        if v == 0: return out + bytes([b])
        out += bytes([b | 0x80])

def field(n, payload):
    return varint(n << 3 | 2) + varint(len(payload)) + payload

def digest_msg(h, size=5):
    return field(1, h.encode()) + varint(2 << 3) + varint(size)

SEEDS = {
    "gateway_path": {
        "manifest": "library/alpine/manifests/3.20", "dir": "v3.20/main/", "empty": "",
        "dotdot-encoded": "%2e%2e/%2e%2e/etc/passwd", "dotdot-slash": "..%2f..%2fetc",
        "overlong": "%c0%ae%c0%ae/x", "slashes": "a//b///c/", "dotdot-param": "x/..;y/z",
        "double-encoded": "%252e%252e/x", "nul": "a%00b", "unicode": "%C3%A9/\u00fc.txt",
        "encoded-slash": "a/%2F/b", "backslash": "..%5c..%5cwin", "dots-spaces": "a/.. /b",
        "question": "a%3Fb", "crlf": "a%0d%0aSet-Cookie:x",
        "fullwidth-dots": "%EF%BC%8E%EF%BC%8E/etc", "u-escape": "%u002e%u002e/x",
        "fullwidth-letters": "%EF%BD%86ile/\u2024\u2024/x",
    },
    "gateway_digest": {
        "valid": "sha256:" + E, "upper": "sha256:" + E.upper(), "short": "sha256:abc",
        "long": "sha256:" + E + "0", "md5": "md5:d41d8cd98f00b204e9800998ecf8427e",
        "bare-hex": E, "no-colon": "sha256", "non-ascii": "sha256:" + E[:63] + "\u00e9",
        "empty": "", "long-algorithm": "x" * 100 + ":00",
    },
    # First line: the body length; the rest: the Range header value.
    "gateway_range": {
        "first-100": "1000\nbytes=0-99", "suffix": "10\nbytes=-5", "open": "10\nbytes=3-",
        "empty-body": "0\nbytes=0-", "max": "18446744073709551615\nbytes=18446744073709551614-",
        "reversed": "10\nbytes=5-2", "multi": "10\nbytes=0-1,4-5", "overflow": "10\nbytes=99999999999999999999999-",
        "suffix-zero": "10\nbytes=-0", "spaces": "10\n bytes= 2 - 4 ", "plus": "10\nbytes=+1-2",
        "other-unit": "10\nitems=0-1", "no-length": "bytes=0-0",
    },
    "gateway_pktcheck": {
        "fetch-answer": pkt("packfile\n") + pkt(b"\x02Counting objects\n") + pkt(b"\x01PACK\x00\x00\x00\x02") + b"0000",
        "advertisement": pkt("# service=git-upload-pack\n") + b"0000" + pkt(A + " HEAD\x00side-band-64k\n") + b"0000",
        "err": pkt("ERR upload-pack: not our ref " + A + "\n") + b"0000",
        "sideband-3": pkt("packfile\n") + pkt(b"\x03fatal: out of memory\n") + b"0000",
        "truncated": pkt("packfile\n") + pkt(b"\x01PACK")[:-2], "no-flush": pkt("packfile\n"),
        "bad-length": b"PACK0000", "reserved": b"0003", "too-long": b"fff5", "flush": b"0000",
        "empty": b"", "short-err": b"0005\x030000",
    },
    "sdk_digest": {
        "valid": "sha256:" + E, "upper-prefixed": "sha256:" + E.upper(), "bare-upper": " " + E.upper() + "\n",
        "short": "sha256:00", "sha512": "sha512:" + E, "empty": "", "colon": ":", "non-ascii": E[:60] + "\u00e9\u00e9",
    },
    "sdk_http": {
        "query": "list&after=a%2Fb&limit=10&x=a+b", "escapes": "a%20b%zz%4%", "unicode": "\u00e4 \u00fc/\u20ac?#",
        "controls": "a\r\nb\x00c", "quotes": 'file "name"\\.txt', "plus": "a+b%2B", "bad-utf8": b"%ff%fe\xff",
        "empty": "",
    },
    # First line: a path; second: a segment pattern.
    "sdk_path": {
        "manifest": "library/alpine/manifests/3.20\n**/manifests/*", "tags": "a/b/tags/list\n**/tags/list",
        "dir": "pool/main/\n*/*", "dotfile": ".bashrc", "double-star-twice": "a/b/c\n**/x/**",
        "empty": "", "ext": "a/b.tar.gz\n*/*", "slashes": "//a//b//\n*/**",
    },
    # First line: a path; the others: patterns (alternately immutable and mutable).
    "sdk_pattern": {
        "simple": "v3.20/main/APKINDEX.tar.gz\n\\.apk$\nAPKINDEX", "anchored": "a/b\n^a/\n^b$",
        "invalid": "x\n(\n[", "huge-repeat": "aaaa\na{1000}{1000}\n(a*)*b", "unicode": "\u00e9t\u00e9\n\\p{L}+\n(?i)\u00c9",
        "empty": "", "class": "x/latest\n[[:alpha:]]\nlatest|nightly",
    },
    # First line: a WWW-Authenticate value; the rest: the token response.
    "docker_auth": {
        "hub": 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"\n{"token":"abc.def","expires_in":300}',
        "basic-then-bearer": 'Basic realm="x", Bearer realm="https://a/t",scope="repository:a:pull repository:b:pull"\n{"access_token":"t"}',
        "escapes": 'Bearer realm="https://a/t?x=1",service="s\\"q\\\\",error="insufficient_scope"\n{"token":"t"}',
        "token68": "Bearer abc==, Bearer realm=https://x/t\n{}", "ftp-realm": 'Bearer realm="ftp://x/t"\n{"token":"t"}',
        "bad-token": 'Bearer realm="https://a/t"\n{"token":"a b\\r\\nc","expires_in":-1}',
        "unterminated": 'Bearer realm="https://a/t\n', "junk": "\u00e9\u00e9, ,,= =\t\"\\\n\x00", "empty": "",
    },
    # One Accept value per line.
    "docker_accept": {
        "docker": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
        "oci-q": "application/vnd.oci.image.index.v1+json;q=0.9\napplication/vnd.oci.image.manifest.v1+json; q=0",
        "wildcards": "*/*\napplication/*", "multibyte-param": "a/b;a\u00e9, c/d ; \u00e9q=0",
        "q-junk": "a/b;q=nan,c/d;q=-1,e/f;Q=0.000", "empty": "", "many": ",".join("application/x-%d" % i for i in range(200)),
    },
    # A manifest body (its first line doubles as a Link value).
    "docker_manifest": {
        "oci": '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}',
        "unknown-type": '{"mediaType":"text/html"}', "not-json": "<html>", "link": '</v2/library/alpine/tags/list?n=10&last=b>; rel="next"',
        "link-unterminated": "<https://x/v2/a/tags/list?n=1", "nested": "[" * 200 + "]" * 200, "empty": "",
    },
    "docker_route": {
        "tag": "library/alpine/manifests/3.20", "digest": "library/alpine/manifests/sha256:" + E,
        "blob": "library/alpine/blobs/sha256:" + E, "tags": "a/b/c/tags/list", "bad-name": "Library/..//manifests/x",
        "bad-digest": "a/blobs/sha256:XYZ", "long-tag": "a/manifests/" + "t" * 200, "other": "a/uploads/x", "empty": "",
    },
    "rpm_repomd": {
        "repomd": ('<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n'
                   '<revision>1</revision>\n<data type="primary"><checksum type="sha256">' + E + '</checksum>'
                   '<location href="repodata/' + E + '-primary.xml.gz"/></data>\n<data type="primary_db"><location href="repodata/x-primary.sqlite.bz2"/></data>\n</repomd>\n'),
        "traversal": '<repomd><data type="primary"><location href="../../../../etc/passwd"/></data><data type="x"><location href="&#46;&#46;/&#46;&#46;/a"/></data></repomd>',
        "absolute": '<repomd><data type="primary"><location href="/etc/passwd"/></data><data type="b"><location href="http://evil/x"/></data><data type="c"><location xml:base="http://m/" href="a"/></data></repomd>',
        "tricky-xml": "<repomd><!-- <data type='x'><location href='c'/></data> --><![CDATA[<data>]]><repo:data type='f'><repo:location href='a&amp;b&#x0;'/></repo:data><data type=\"q\"><location href=\"a>b\" /></data></repomd>",
        "truncated": '<repomd><data type="primary"><location href="repodata/a', "entities": '<data type="p"><location href="&#99999999;&#x110000;&bogus;&#x2F;etc"/></data>',
        "empty": "",
    },
    # First line: path; second: query.
    "rpm_path": {
        "repomd": "9/BaseOS/x86_64/os/repodata/repomd.xml", "checksummed": "9/BaseOS/x86_64/os/repodata/" + E + "-primary.xml.gz",
        "package": "9/BaseOS/x86_64/os/Packages/bash-5.1.rpm", "metalink": "metalink\nrepo=epel-9&arch=x86_64",
        "dir": "9/BaseOS/", "dots": "a/../repodata/repomd.xml", "empty": "",
    },
    "alpine_path": {
        "index": "v3.20/main/x86_64/APKINDEX.tar.gz", "package": "v3.20/main/x86_64/musl-1.2.5-r0.apk",
        "sign": "v3.20/main/x86_64/.SIGN.RSA.alpine.rsa.pub", "status": "last-updated\nx=1", "dir": "v3.20/",
        "unicode": "\u00e9/\u00fc.APK", "dots": "../x.apk", "empty": "",
    },
    "cas_proto": {
        "action-result": (varint(4 << 3) + varint(0) + field(2, field(1, b"out/a.o") + field(2, digest_msg(H2)))
                          + field(3, field(1, b"out/d") + field(3, digest_msg(E.upper()))) + field(6, digest_msg(H2)) + field(8, b"")),
        "ccache": b"\xcc\xac\x00\x01" + b"\x00" * 20, "truncated": field(2, field(2, digest_msg(H2)))[:-3],
        "bad-hash": field(6, digest_msg("zz" * 32)), "group": varint(2 << 3 | 3) + b"\x00",
        "long-varint": b"\x80" * 11, "huge-length": varint(2 << 3 | 2) + varint(2 ** 63), "empty": b"",
    },
    # An inspection as the gRPC front sends it: the path, `name: value`
    # header lines, an empty line, the body.
    "cas_reapi": {
        "directory": ("reapi/directory/" + H2 + "\n\n").encode() + field(1, field(1, b"f") + field(2, digest_msg(H2)))
                     + field(2, field(1, b"d") + field(2, digest_msg(E, 0))) + field(3, field(1, b"l") + field(2, b"f")),
        "artifact": ("reapi/asset/" + H2 + "\nx-reapi-uri: urn:fdc:buildstream.build:2020:artifact:p/e/" + "a" * 64
                     + "\nx-reapi-directory: " + H2 + "/5\n\n").encode()
                    + field(8, digest_msg(H2)) + field(10, digest_msg(H2)) + field(11, field(1, b"log") + field(2, digest_msg(H2)))
                    + field(12, digest_msg(E.upper())) + field(14, digest_msg(H2)) + field(15, digest_msg(H2)),
        "generic": "reapi/asset/" + H2 + "\nx-reapi-uri: https://example.com/x.tar\nx-reapi-blob: " + H2 + "/5\nx-reapi-directory: " + E + "/0\n\n",
        "asset-directory": "reapi/asset-directory/" + H2 + "\nx-reapi-uri: urn:fdc:buildstream.build:2020:source:local/" + "b" * 64 + "\n\n",
        "omitted": "reapi/asset/" + H2 + "\nx-reapi-uri: urn:x\nx-reapi-body: omitted\n\n",
        "bad-header": "reapi/asset/" + H2 + "\nx-reapi-uri: urn:x\nx-reapi-blob: zz/1\n\n",
        "bad-path": "reapi/nothing/x\n\n", "empty": "",
    },
    # First line: path; then methods.
    "cas_path": {
        "cas": "cas/" + H2 + "\nGET\nHEAD", "ac": "ac/" + E.upper() + "\nPUT", "empty-blob": "cas/" + E + "\nGET",
        "short": "cas/abc", "nested": "cas/" + H2 + "/x", "other": "ac\nPOST", "empty": "",
    },
    "git_pktline": {
        "v2-fetch": lines("command=fetch", "agent=git/2.45", "object-format=sha1", "|", "thin-pack", "ofs-delta", "want " + A, "done", "."),
        "v2-ls-refs": lines("command=ls-refs", "agent=git/2.45", "|", "peel", "symrefs", "ref-prefix HEAD", "."),
        "v0-want": lines("want " + A + " multi_ack_detailed side-band-64k thin-pack ofs-delta agent=git/2.30", ".", "done"),
        "with-have": lines("command=fetch", "|", "want " + A, "have " + "2" * 40, "done", "."),
        "bad-length": b"00zzcommand=fetch", "truncated": lines("command=fetch")[:-3], "too-long": b"ffffabc",
        "uppercase-hex": b"000Acommand=x0000", "empty": b"",
    },
    # First line: path; second: query.
    "git_request": {
        "refs": "o/r.git/info/refs\nservice=git-upload-pack", "push": "o/r.git/info/refs\nservice=git-receive-pack",
        "upload": "o/r.git/git-upload-pack", "dumb": "o/r.git/objects/info/packs", "no-service": "o/r.git/info/refs",
        "dots": "../r.git/info/refs\nservice=git-upload-pack", "empty": "",
    },
    # A packument from an upstream.
    "npm_packument": {
        "plain": '{"name":"p","versions":{"1.0.0":{"dist":{"integrity":"sha512-' + "A" * 86 + '==","shasum":"' + A + '","tarball":"https://registry.example/npm/p/-/p-1.0.0.tgz"}}}}',
        "elsewhere": '{"versions":{"1":{"dist":{"tarball":"https://files.example/x/y.tgz"}},"2":{"dist":{"tarball":"file:///etc/passwd"}},"3":{"dist":{"tarball":7}}}}',
        "duplicate": '{"versions":{"1":{"dist":{"tarball":"https://registry.example/npm/p/-/p-1.tgz","tarb\\u0061ll":"https://evil/x"}}}}',
        "array-version": '{"versions":{"1":[{"dist":{"tarball":"https://evil/x"}}]}}',
        "no-versions": '{"name":"p","dist-tags":{}}', "truncated": '{"versions":{"1":{"dist":{"tarball":"https://regi',
        "empty": "",
    },
    # A project page from an upstream (HTML or PEP 691 JSON).
    "pypi_page": {
        "html": '<a href="https://index.example/pypi/packages/d/demo-1.0.tar.gz#sha256=' + E + '" data-requires-python="&gt;=3">demo-1.0.tar.gz</a>',
        "tricky": '<base href="https://evil/"><a href=//evil/x>1</a><A HREF="JavaScript:alert(1)">2</A><!-- <a href="https://evil/c"> --><a href="../../x">3</a>',
        "json": '{"files":[{"filename":"demo-1.0.tar.gz","url":"https://files.example/d/demo-1.0.tar.gz","hashes":{"sha256":"' + E + '"}},{"url":"ftp://x/y"}]}',
        "unquoted": "<a href=https://index.example/pypi/a.whl#sha256=00 data-yanked>a</a><a href='b.whl'>b</a>",
        "truncated": '<a href="https://index.example/pypi/packages/demo', "empty": "",
    },    # maven-metadata.xml from an upstream or a client (any level).
    "maven_metadata": {
        'artifact': '<?xml version="1.0" encoding="UTF-8"?>\n<metadata>\n  <groupId>org.example</groupId>\n  <artifactId>lib</artifactId>\n  <versioning>\n    <latest>1.1</latest>\n    <release>1.1</release>\n    <versions>\n      <version>1.0</version>\n      <version>1.1</version>\n    </versions>\n    <lastUpdated>20261207101500</lastUpdated>\n  </versioning>\n</metadata>\n',
        'html': '<html><head><title>404 Not Found</title></head><body>Not Found</body></html>',
        'plugins': '<metadata xmlns="http://maven.apache.org/METADATA/1.1.0"><plugins><plugin><name>Hello</name><prefix>hello</prefix><artifactId>hello-maven-plugin</artifactId></plugin></plugins></metadata>',
        'snapshot': '<?xml version="1.0" encoding="UTF-8"?>\n<metadata modelVersion="1.1.0">\n  <groupId>org.example</groupId>\n  <artifactId>lib</artifactId>\n  <version>2.0-SNAPSHOT</version>\n  <versioning>\n    <snapshot>\n      <timestamp>20261207.101500</timestamp>\n      <buildNumber>2</buildNumber>\n    </snapshot>\n    <lastUpdated>20261207101500</lastUpdated>\n    <snapshotVersions>\n      <snapshotVersion>\n        <classifier>sources</classifier>\n        <extension>jar</extension>\n        <value>2.0-20261207.101500-2</value>\n        <updated>20261207101500</updated>\n      </snapshotVersion>\n      <snapshotVersion>\n        <extension>pom</extension>\n        <value>2.0-20261207.101500-2</value>\n        <updated>20261207101500</updated>\n      </snapshotVersion>\n    </snapshotVersions>\n  </versioning>\n</metadata>\n',
    },
    # A Debian Release/InRelease file; the real ones are copied from
    # plugins/deb/testdata/ (reprepro and apt-ftparchive output) in main().
    "deb_release": {
        'crlf-bom': '\ufeffSuite: stable\r\nsha512:\r\n cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e 0 main/binary-amd64/Packages\r\nSHA1:\r\n da39a3ee5e6b4b0d3255bfef95601890afd80709 0 main/binary-amd64/Packages\r\n',
        'empty': '',
        'html': '<!DOCTYPE html>\n<html><head><title>503</title></head><body>Maintenance</body></html>\n',
        'odd-names': 'Suite: stable\nAcquire-By-Hash: yes\nSHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 InRelease\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 Release.gpg\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 pool/main/a/a_1_all.deb\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/by-hash/SHA256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/by-hash/SHA256/zz\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Release\n',
        'packages-paragraph': 'Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nSHA256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n',
        'short-digest': 'Suite: stable\nSHA256:\n e3b0c442 0 main/binary-amd64/Packages\n',
        'traversal': 'Suite: stable\nAcquire-By-Hash: yes\nSHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 ../../../etc/passwd\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 /etc/shadow\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main//x\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/.../x\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/..;x/y\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages\n',
        'unterminated-signature': '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: stable\nSHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages\n',
    },
}

# Seeds that are real tools' output, kept as test data by their adapter.
COPIED = {
    "deb_release": {
        "ftparchive-inrelease": "plugins/deb/testdata/apt-ftparchive-InRelease",
        "ftparchive-release": "plugins/deb/testdata/apt-ftparchive-Release",
        "reprepro-inrelease": "plugins/deb/testdata/reprepro-InRelease",
    },
}

def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for target, files in COPIED.items():
        for name, src in files.items():
            with open(os.path.join(repo, src), "rb") as f:
                SEEDS[target][name] = f.read()
    for target, seeds in SEEDS.items():
        d = os.path.join(ROOT, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            if isinstance(data, str):
                data = data.encode("utf-8")
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)

if __name__ == "__main__":
    main()
