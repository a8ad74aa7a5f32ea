// cli.js - the command line of flow.js and proxy_auth.js: read the SPEC.json named on the
// command line, run it, print the result as one JSON object and exit 0 when it says "ok".
'use strict';

const fs = require('fs');

// Exit only once the JSON is written: stdout is a pipe, where node writes asynchronously, and
// process.exit() right after write() cut a long flow's output at 64 KiB.
function finish(obj, status) {
	process.stdout.write(JSON.stringify(obj) + '\n', () => process.exit(status));
}

// run(spec) returns a promise of {"ok": ..., ...}; when it rejects, the output is
// {"ok": false, "error": "..."} with the fields of `empty` (the script's empty lists).
function main(run, empty) {
	const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
	run(spec).then((out) => finish(out, out.ok ? 0 : 1),
		(e) => finish(Object.assign({ ok: false, error: String(e) }, empty), 1));
}

module.exports = { main };
