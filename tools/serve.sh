#!/usr/bin/env bash
# Builds the web app (tools/build-app.sh: wasm engine, demo model, precache list) and serves www/ on
# http://localhost:${PORT:-8080}. Open that address in a browser with WebGPU. It first installs what the
# build needs and is missing (tools/setup.sh serve); SKIP_SETUP=1 skips that.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_SETUP:-0}" = 1 ] || bash tools/setup.sh serve
bash tools/build-app.sh
exec node --input-type=module -e "
import { serve } from './tools/static-server.mjs';
const { url } = await serve('www', Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1', { csp: true });
console.log('the app is at ' + url + '/ (Ctrl-C to stop)');
"
