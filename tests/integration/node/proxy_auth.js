// proxy_auth.js - headless Chromium through an authenticating proxy, for
// tests/integration/test_auth_chromium.py: puppeteer-core drives Debian's chromium (no browser
// is downloaded) with --proxy-server, answers the proxy's 407 with page.authenticate()
// (Chromium's own proxy-credentials path, as a user typing them into the dialog), loads each
// URL and prints one JSON object.
//
// Usage: node proxy_auth.js SPEC.json
// SPEC: {
//   "executable": "/usr/bin/chromium", "profile": "/tmp/...", "timeout_ms": 45000,
//   "proxy": "http://127.0.0.1:PORT", "resolver_rules": "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
//   "auth": {"username": "...", "password": "..."} or null (no credentials offered),
//   "urls": [URL, ...],
//   "ignore_cert_errors": true (optional: an https:// origin with a test certificate; the
//                               tests of the proxy's CONNECT, not of certificate checks)
// }
// Output: {"ok": true, "loads": [{"url", "status", "text", "error"}...]}; a load that fails
// (net::ERR_...) has "error" and status null. {"ok": false, "error": "..."} when the browser
// itself failed. (Whether the proxy asked first is the access log's to tell: DevTools does
// not report the 407 that Chromium answered itself.)
'use strict';

const cli = require('./cli');
const puppeteer = require('puppeteer-core');

async function run(spec) {
	const out = { ok: false, loads: [] };
	const timeout = spec.timeout_ms || 45000;
	const browser = await puppeteer.launch({
		executablePath: spec.executable || '/usr/bin/chromium',
		headless: true,
		pipe: true,
		userDataDir: spec.profile,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
		       '--disable-extensions', '--disable-background-networking',
		       '--disable-component-update', '--disable-sync', '--no-default-browser-check',
		       '--proxy-server=' + spec.proxy,
		       '--host-resolver-rules=' + spec.resolver_rules]
			.concat(spec.ignore_cert_errors ? ['--ignore-certificate-errors'] : []),
		acceptInsecureCerts: !!spec.ignore_cert_errors,
		timeout,
		protocolTimeout: timeout,
	});
	try {
		const page = await browser.newPage();
		page.setDefaultTimeout(timeout);
		page.setDefaultNavigationTimeout(timeout);
		if (spec.auth)
			await page.authenticate(spec.auth);
		for (const url of spec.urls) {
			const load = { url, status: null, text: '', error: null };
			try {
				const resp = await page.goto(url, { waitUntil: 'load' });
				load.status = resp ? resp.status() : null;
				load.text = await page.evaluate(() => (document.body ? document.body.innerText : ''));
			} catch (e) {
				load.error = String(e && e.message ? e.message : e);
			}
			out.loads.push(load);
		}
		out.ok = true;
	} catch (e) {
		out.error = String(e && e.stack ? e.stack : e);
	} finally {
		await browser.close().catch(() => {});
	}
	return out;
}

cli.main(run, { loads: [] });
