#!/usr/bin/env python3
"""Writes src/apiserver/protobuf/facts.txt: the JSON facts that Kubernetes' generated.proto
files do not carry, read from upstream's Go types (types.go and friends) at a tag.

For every proto message (Go struct) it records, per field number:
  k  keep the zero value in JSON: the Go field is a pointer or has no `omitempty`
     (only for scalar-like fields, where it matters: string, bool, numbers, bytes,
     IntOrString, Quantity);
  i  `json:",inline"`: the nested object's members merge into the parent;
  x  `json:"-"`: not in JSON at all;
  =name  the JSON name differs from the proto field name.

Usage: scripts/k8s-proto-facts.py API_GIT APIMACHINERY_GIT APIEXTENSIONS_GIT [TAG] > facts.txt
(the *_GIT arguments are git directories of github.com/kubernetes/{api,apimachinery,
apiextensions-apiserver}; TAG defaults to v0.32.4, published from kubernetes v1.32.4).
Only the derived facts are committed, never upstream's Go code.
"""
import re
import subprocess
import sys

SCALARS = {"string", "bool", "int32", "int64", "uint32", "uint64", "double", "float", "bytes",
           "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
           "k8s.io.apimachinery.pkg.api.resource.Quantity"}


def git(gitdir, *args):
    return subprocess.run(["git", "--git-dir", gitdir, *args], check=True,
                          capture_output=True, text=True).stdout


def proto_fields(text, package):
    """message name -> {field number: (proto type, proto name)} from one generated.proto."""
    out, stack = {}, []
    for line in text.splitlines():
        line = line.split("//")[0].strip()
        m = re.match(r"message (\w+) \{", line)
        if m:
            stack.append(m.group(1))
            out.setdefault(".".join(stack), {})
            continue
        if line == "}" and stack:
            stack.pop()
            continue
        m = re.match(r"(?:optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)", line)
        if m and stack:
            ty = m.group(1).lstrip(".")
            if "." not in ty and ty not in SCALARS:
                ty = package + "." + ty
            out[".".join(stack)][int(m.group(3))] = (ty, m.group(2))
            continue
        m = re.match(r"map<[^>]*>\s+(\w+)\s*=\s*(\d+)", line)
        if m and stack:
            out[".".join(stack)][int(m.group(2))] = ("map", m.group(1))
    return out


def go_fields(text):
    """Go struct name -> [(field number, pointer, json name, json options)]."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.match(r"type (\w+) struct \{", line)
        if m:
            current = out.setdefault(m.group(1), [])
            continue
        if line.startswith("}"):
            current = None
            continue
        if current is None or 'protobuf:"' not in line or line.lstrip().startswith("//"):
            continue
        decl = line.split("`")[0].split()
        ty = decl[-1] if decl else ""
        pb = re.search(r'protobuf:"([^"]*)"', line).group(1).split(",")
        if len(pb) < 2 or not pb[1].isdigit():
            continue
        js = re.search(r'json:"([^"]*)"', line)
        js = js.group(1).split(",") if js else [decl[0] if decl else ""]
        current.append((int(pb[1]), ty.startswith("*"), js[0], set(js[1:])))
    return out


def package_facts(gitdir, tag, directory, package, proto_path):
    protos = proto_fields(git(gitdir, "show", f"{tag}:{proto_path}"), package)
    files = [f for f in git(gitdir, "ls-tree", "--name-only", tag, directory + "/").split()
             if f.endswith(".go") and not f.endswith("_test.go")
             and not f.endswith("generated.pb.go") and "/zz_generated" not in f]
    structs = {}
    for f in files:
        structs.update(go_fields(git(gitdir, "show", f"{tag}:{f}")))
    lines = []
    for msg in sorted(protos):
        fields = protos[msg]
        flags = []
        for num, pointer, json_name, opts in sorted(structs.get(msg, [])):
            if num not in fields:
                continue
            ty, proto_name = fields[num]
            if json_name == "-":
                flags.append(f"{num}x")
            elif "inline" in opts:
                flags.append(f"{num}i")
            else:
                flag = ""
                if ty in SCALARS and (pointer or "omitempty" not in opts):
                    flag += "k"
                if json_name and json_name != proto_name:
                    flag += "=" + json_name
                if flag:
                    flags.append(f"{num}{flag}")
        if flags:
            lines.append(f"{msg} {' '.join(flags)}")
    return lines


def main():
    api, machinery, ext = sys.argv[1:4]
    tag = sys.argv[4] if len(sys.argv) > 4 else "v0.32.4"
    sources = []
    for p in git(api, "ls-tree", "-r", "--name-only", tag).split():
        if p.endswith("/generated.proto"):
            d = p.rsplit("/", 1)[0]
            sources.append((api, d, "k8s.io.api." + d.replace("/", "."), p))
    for d in ["pkg/api/resource", "pkg/apis/meta/v1", "pkg/apis/meta/v1beta1", "pkg/runtime",
              "pkg/runtime/schema", "pkg/util/intstr"]:
        sources.append((machinery, d, "k8s.io.apimachinery." + d.replace("/", "."),
                        d + "/generated.proto"))
    d = "pkg/apis/apiextensions/v1"
    sources.append((ext, d, "k8s.io.apiextensions_apiserver." + d.replace("/", "."),
                    d + "/generated.proto"))
    print(f"# Generated by scripts/k8s-proto-facts.py from upstream's Go types at {tag}")
    print("# (kubernetes v1.32.4). Per message: field number + flags; k = keep the zero value")
    print("# (Go pointer or no omitempty), i = json inline, x = not in JSON, =name = JSON name.")
    for gitdir, directory, package, proto_path in sources:
        lines = package_facts(gitdir, tag, directory, package, proto_path)
        if lines:
            print(f"@{package}")
            print("\n".join(lines))


main()
