// flow.js - one browser flow for the status page tests: puppeteer-core drives Debian's
// chromium (no browser is downloaded) through a list of steps and prints one JSON object.
//
// Usage: node flow.js SPEC.json    (tests/integration/uibrowser.py writes SPEC and runs this)
// SPEC: {
//   "executable": "/usr/bin/chromium", "profile": "/tmp/...", "timeout_ms": 60000,
//   "auth": {"username": "...", "password": "..."} (optional: Basic credentials),
//   "viewport": [1280, 900],
//   "steps": [
//     {"goto": URL},                          navigate, wait for the load
//     {"fill": CSS, "value": TEXT},           set a form field's value (hidden ones too)
//     {"submit": CSS},                        click it and wait for the navigation it causes
//     {"click": CSS},                         click it, no navigation expected
//     {"wait": CSS},                          wait until an element matches
//     {"wait_for": EXPR},                     wait until a JS expression is truthy (ui.js
//                                             refreshed a number, say); never a fixed sleep
//     {"snapshot": true},                     record the page as it is now (after scripts)
//     {"screenshot": PATH},                   full-page PNG
//     {"cookies": true},                      record the page's cookies
//     {"eval": EXPR}                          evaluate a JS expression in the page (a
//                                             promise is awaited); its JSON value goes to
//                                             "evals" (fetch() from the page's origin, with
//                                             the browser's cookies)
//   ]
// }
// Output: {"ok": true, "pages": [{"step", "url", "status", "title", "text", "html"}...],
//          "cookies": [...], "evals": [...]} or {"ok": false, "error": "...", "pages": [...]}.
// The page's text is document.body.innerText, its html document.documentElement.outerHTML.
'use strict';

const cli = require('./cli');
const puppeteer = require('puppeteer-core');

async function snapshot(page, step, resp) {
	return {
		step,
		url: page.url(),
		status: resp ? resp.status() : null,
		title: await page.title(),
		text: await page.evaluate(() => (document.body ? document.body.innerText : '')),
		html: await page.evaluate(() => document.documentElement.outerHTML),
	};
}

async function run(spec) {
	const out = { ok: false, pages: [], cookies: [], evals: [] };
	const timeout = spec.timeout_ms || 60000;
	const vp = spec.viewport || [1280, 900];
	const browser = await puppeteer.launch({
		executablePath: spec.executable || '/usr/bin/chromium',
		headless: true,
		pipe: true,                 // DevTools over a pipe: no debugging port to open
		userDataDir: spec.profile,
		args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions',
		       '--disable-background-networking', '--disable-component-update',
		       '--disable-sync', '--no-default-browser-check', '--no-proxy-server'],
		defaultViewport: { width: vp[0], height: vp[1] },
		timeout,
		protocolTimeout: timeout,
	});
	try {
		const page = await browser.newPage();
		page.setDefaultTimeout(timeout);
		page.setDefaultNavigationTimeout(timeout);
		if (spec.auth)
			await page.authenticate(spec.auth);
		for (let i = 0; i < spec.steps.length; i++) {
			const s = spec.steps[i];
			if (s.goto !== undefined) {
				const resp = await page.goto(s.goto, { waitUntil: 'load' });
				out.pages.push(await snapshot(page, i, resp));
			} else if (s.fill !== undefined) {
				const n = await page.$$eval(s.fill, (els, v) => {
					els.forEach((el) => { el.value = v; });
					return els.length;
				}, s.value);
				if (n === 0)
					throw new Error('step ' + i + ': nothing matches ' + s.fill);
			} else if (s.submit !== undefined) {
				const [resp] = await Promise.all([
					page.waitForNavigation({ waitUntil: 'load' }),
					page.click(s.submit),
				]);
				out.pages.push(await snapshot(page, i, resp));
			} else if (s.click !== undefined) {
				await page.click(s.click);
			} else if (s.wait !== undefined) {
				await page.waitForSelector(s.wait);
			} else if (s.wait_for !== undefined) {
				await page.waitForFunction(s.wait_for, { polling: 100 });
			} else if (s.snapshot) {
				out.pages.push(await snapshot(page, i, null));
			} else if (s.screenshot !== undefined) {
				await page.screenshot({ path: s.screenshot, fullPage: true });
			} else if (s.eval !== undefined) {
				out.evals.push(await page.evaluate(s.eval));
			} else if (s.cookies) {
				out.cookies = await page.cookies();
			} else {
				throw new Error('step ' + i + ': unknown ' + JSON.stringify(s));
			}
		}
		out.ok = true;
	} catch (e) {
		out.error = String(e && e.stack ? e.stack : e);
	} finally {
		await browser.close().catch(() => {});
	}
	return out;
}

cli.main(run, { pages: [] });
