// Builds papayd once for all the test files: go build -o dist/papayd ./cmd/papayd.

import { buildPapayd } from "./papayd.js";

const started = Date.now();
const bin = await buildPapayd();
console.log(`built ${bin} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
