#!/usr/bin/env bash
# Builds the Chromium (Manifest V3) extension from this repository: the side panel and content
# script of extension/ plus the app's own modules, the wasm engine and the bundled demo model
# copied from www/ (assembled first: tools/build-app.sh, or tools/assemble-app.sh after a build)
# into dist/extension/app/. Writes the unpacked folder dist/extension/ (chrome://extensions ->
# "Load unpacked") and dist/spatial-mllm-extension.zip for a store upload. Everything the
# extension runs is in the package: MV3 allows no remote code.
#
#   EXTENSION_TEST_HOSTS="http://127.0.0.1/* http://localhost:PORT/*"  adds these host permissions
#       (the browser test's local pages, which it cannot open the panel on by clicking the toolbar
#       button, so activeTab is never granted there; and the origins the panel would ask the user
#       for, an embedded frame's and the mock hub's, since a test cannot answer the prompt). Store
#       builds leave it unset.
#   EXTENSION_TEST_GRANT="tabCapture"  grants these optional permissions at install (the test cannot
#       answer a permission prompt). Store builds leave it unset.
#   EXTENSION_OUT=dir  writes the unpacked folder there instead (its zip next to it).
set -euo pipefail
cd "$(dirname "$0")/.."
for need in pkg/spatial_mllm_web.js models/demo/model/manifest.json models/demo/sampler/manifest.json; do
  [ -f "www/$need" ] || { echo "www/$need is missing: run tools/build-app.sh (or tools/assemble-app.sh) first" >&2; exit 1; }
done
out=${EXTENSION_OUT:-dist/extension}
rm -rf "$out"
mkdir -p "$out/app/models"
cp extension/*.js extension/*.html extension/*.css "$out/"
cp -r extension/icons "$out/icons"
# The app's modules the panel imports (not forked: the same files as the app serves).
for f in app.css ask-ui.js ask-ui-view.js models.js catalogue.js questions.js pipeline.js ui.js; do cp "www/$f" "$out/app/"; done
for d in engine video view3d hub vendor pkg; do cp -r "www/$d" "$out/app/"; done
cp -r www/models/demo "$out/app/models/demo"
# The manifest, with host permissions for a test build.
node -e '
  const fs = require("fs");
  const m = JSON.parse(fs.readFileSync("extension/manifest.json", "utf8"));
  const hosts = (process.env.EXTENSION_TEST_HOSTS || "").split(/\s+/).filter(Boolean);
  if (hosts.length) m.host_permissions = hosts;
  for (const p of (process.env.EXTENSION_TEST_GRANT || "").split(/\s+/).filter(Boolean)) {
    m.permissions.push(p);
    m.optional_permissions = (m.optional_permissions || []).filter((q) => q !== p);
  }
  fs.writeFileSync(process.argv[1], JSON.stringify(m, null, 2) + "\n");
' "$out/manifest.json"
zipfile="$(dirname "$out")/spatial-mllm-extension.zip"
rm -f "$zipfile"
(cd "$out" && zip -qr -X "$(realpath -m "../$(basename "$zipfile")")" .)
echo "built $out/ ($(du -sh "$out" | cut -f1)) and $zipfile ($(du -h "$zipfile" | cut -f1))${EXTENSION_TEST_HOSTS:+; test hosts: $EXTENSION_TEST_HOSTS}${EXTENSION_TEST_GRANT:+; granted: $EXTENSION_TEST_GRANT}"
