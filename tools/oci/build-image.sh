#!/usr/bin/env bash
# Builds api-guard's wasm module into an OCI image layout that Istio's and Envoy Gateway's image
# fetchers accept: the "compat" variant of the Wasm image spec, an OCI image manifest whose LAST
# layer is `application/vnd.oci.image.layer.v1.tar+gzip` and holds `plugin.wasm`. (The
# `application/wasm` artifact kind and wasm-to-oci's media type are refused by both fetchers.)
#
# Deterministic: the same module gives the same manifest digest on any machine with GNU tar and
# gzip (sorted entries, fixed owner, mode and mtime, `gzip -n` without name or timestamp, no
# creation date in the config). The digest is what Istio's WasmPlugin `sha256` and Envoy
# Gateway's image `sha256` pin for an oci:// URL: the MANIFEST digest, not the .wasm hash.
#
# usage: build-image.sh <module.wasm> <layout-dir> <tag> [<manifest template> ...]
# Prints the manifest digest (sha256:<hex>) on stdout and writes it to <layout-dir>.digest. Each
# template (the Istio and Envoy Gateway manifests) is written next to the layout with
# @MANIFEST_DIGEST@ replaced by the digest's hex, the form both `sha256` fields take.
set -euo pipefail

module=${1:?usage: build-image.sh <module.wasm> <layout-dir> <tag>}
layout=${2:?layout directory}
tag=${3:?tag}

[ -f "$module" ] || { echo "build-image.sh: no module at $module" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf "$layout"
mkdir -p "$layout/blobs/sha256" "$work/root"
cp "$module" "$work/root/plugin.wasm"

# blob <file>: stores a file under its digest, prints "<hex> <size>".
blob() {
  local hex size
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  cp "$1" "$layout/blobs/sha256/$hex"
  echo "$hex $size"
}

# The layer: one file, plugin.wasm, owned by 0:0, mode 0644, mtime 0 (ustar: no atime/ctime).
tar --create --file "$work/layer.tar" --directory "$work/root" --format=ustar --sort=name \
  --owner=0 --group=0 --numeric-owner --mode=0644 --mtime=@0 plugin.wasm
gzip -n -9 --stdout "$work/layer.tar" > "$work/layer.tar.gz"
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
read -r layer_hex layer_size < <(blob "$work/layer.tar.gz")

# The image config: platform wasm/wasip1 (as Go names it); the fetchers read only the layers.
printf '{"architecture":"wasm","os":"wasip1","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$diff_id" > "$work/config.json"
read -r config_hex config_size < <(blob "$work/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.title":"plugin.wasm"}}],"annotations":{"org.opencontainers.image.title":"api-guard","org.opencontainers.image.description":"api-guard proxy-wasm filter for Envoy"}}' \
  "$config_hex" "$config_size" "$layer_hex" "$layer_size" > "$work/manifest.json"
read -r manifest_hex manifest_size < <(blob "$work/manifest.json")

printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest_hex" "$manifest_size" "$tag" > "$layout/index.json"

echo "sha256:$manifest_hex" > "$layout.digest"
for template in "${@:4}"; do
  grep -q '@MANIFEST_DIGEST@' "$template" || { echo "build-image.sh: no @MANIFEST_DIGEST@ in $template" >&2; exit 1; }
  sed "s/@MANIFEST_DIGEST@/$manifest_hex/g" "$template" > "$(dirname "$layout")/$(basename "$template")"
done
echo "sha256:$manifest_hex"
