#!/usr/bin/env bash
# Builds the wasm engine and serves the web app (www/) on http://localhost:${PORT:-8080}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build-wasm.sh
rm -rf www/pkg && cp -r pkg www/pkg
exec node --input-type=module -e "
import { serve } from './tools/static-server.mjs';
const { url } = await serve('www', Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1');
console.log('serving www/ at ' + url + ' (Ctrl-C to stop)');
"
