#!/usr/bin/env bash
# Vendors upstream's generated.proto files (k8s.io/api, k8s.io/apimachinery,
# k8s.io/apiextensions-apiserver) under proto/k8s/, laid out by Go import path so their
# `import "k8s.io/..."` lines resolve with `-I proto/k8s`. The files are copied verbatim
# (Apache-2.0 headers kept); they import no gogo.proto, so nothing is stripped.
#
# Usage: scripts/vendor-k8s-proto.sh API_GIT APIMACHINERY_GIT APIEXTENSIONS_GIT [TAG]
#   *_GIT are git directories of github.com/kubernetes/{api,apimachinery,
#   apiextensions-apiserver}; TAG defaults to v0.32.4 (published from kubernetes v1.32.4).
set -euo pipefail
api=$1 machinery=$2 ext=$3 tag=${4:-v0.32.4}
out=$(cd "$(dirname "$0")/.." && pwd)/proto/k8s
rm -rf "$out/k8s.io"

copy() { # git-dir import-prefix path
    local dest="$out/$2/$3"
    mkdir -p "$(dirname "$dest")"
    git --git-dir="$1" show "$tag:$3" >"$dest"
}

for f in $(git --git-dir="$api" ls-tree -r --name-only "$tag" | grep '/generated.proto$'); do
    copy "$api" k8s.io/api "$f"
done
for f in pkg/api/resource pkg/apis/meta/v1 pkg/apis/meta/v1beta1 pkg/runtime \
    pkg/runtime/schema pkg/util/intstr; do
    copy "$machinery" k8s.io/apimachinery "$f/generated.proto"
done
copy "$ext" k8s.io/apiextensions-apiserver pkg/apis/apiextensions/v1/generated.proto
echo "vendored $(find "$out/k8s.io" -name generated.proto | wc -l) files from $tag"
