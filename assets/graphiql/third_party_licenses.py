#!/usr/bin/env python3
"""Writes THIRD-PARTY-LICENSES.txt for graphiql.min.js to stdout.

usage: third_party_licenses.py GRAPHIQL_PACKAGE_DIR PACKAGE_ROOT...

GRAPHIQL_PACKAGE_DIR is the unpacked npm tarball (`package/`, with graphiql.min.js.map); each
PACKAGE_ROOT is a node_modules directory, or a directory of unpacked tarballs named like npm pack's
(`graphql-ws-5.16.2/package`), where the bundled packages are looked up. The bundled packages are
the node_modules paths among the source map's `sources`, plus GraphiQL's own monorepo packages.
"""
import glob
import json
import os
import re
import sys

MONOREPO = ["@graphiql/react", "@graphiql/plugin-doc-explorer", "@graphiql/plugin-history",
            "@graphiql/toolkit", "codemirror-graphql", "graphql-language-service"]
# Vendored separately, each with its own LICENSE.
SEPARATE = {"react", "react-dom"}

HEADER = """Third-party software bundled in graphiql.min.js (graphiql {version}, UMD build from npm)

graphiql.min.js is one bundle: besides GraphiQL itself (see LICENSE) it contains the packages
below, as listed by the "sources" of its source map (graphiql.min.js.map in the npm package).
React and ReactDOM are not bundled in it; they are vendored separately (react-18.3.1/LICENSE,
react-dom-18.3.1/LICENSE). The bundle does not record its dependencies' versions: the versions
and licence texts below are those npm resolved for graphiql@{version} when it was vendored (the bundle
itself holds e.g. graphql 16.11.0 where npm resolved 16.15.0). Every package is MIT licensed except
@react-aria/* (Apache-2.0), entities (BSD-2-Clause) and tslib (0BSD).

"""


def find(name, roots):
    for root in roots:
        for candidate in [os.path.join(root, name)] + glob.glob(
                os.path.join(root, name.replace("@", "").replace("/", "-") + "-*", "package")):
            if os.path.isfile(os.path.join(candidate, "package.json")):
                return candidate
    return None


def main():
    graphiql, roots = sys.argv[1], sys.argv[2:]
    version = json.load(open(os.path.join(graphiql, "package.json")))["version"]
    sources = json.load(open(os.path.join(graphiql, "graphiql.min.js.map")))["sources"]
    names = {m.group(1) for s in sources if (m := re.search(r"node_modules/((?:@[^/]+/)?[^/]+)", s))}
    names = sorted((names | set(MONOREPO)) - SEPARATE)
    out, missing = [], []
    for name in names:
        d = find(name, roots)
        if d is None:
            missing.append(name)
            continue
        pj = json.load(open(os.path.join(d, "package.json")))
        lic = pj.get("license")
        files = sorted(f for f in os.listdir(d) if re.match(r"(?i)^(licen[cs]e|copying)", f))
        text = open(os.path.join(d, files[0]), errors="replace").read().strip() if files else None
        if not text:
            text = f'The npm package ships no licence file; its package.json declares "license": "{lic}".'
            if name.startswith("@graphiql/"):
                text += (" It is part of the GraphiQL monorepo (https://github.com/graphql/graphiql),"
                         " whose MIT licence is in LICENSE.")
            if name == "react-compiler-runtime":
                text += (" It is published by Meta from the React repository, whose MIT licence is in"
                         " react-18.3.1/LICENSE.")
        out.append(f"{'=' * 78}\n{name} {pj['version']} ({lic})\n{'=' * 78}\n\n{text}\n")
    if missing:
        sys.exit("not found under the package roots (npm pack them): " + ", ".join(missing))
    sys.stdout.write(HEADER.format(version=version) + "\n".join(out))


main()
