#!/usr/bin/env node
// pac_eval.js - evaluate a proxy auto-config file the way a browser does, over a table.
//
// Usage: pac_eval.js PAC_FILE TABLE_JSON
//   TABLE_JSON is a file holding [{"url": ..., "host": ..., "expect": ...}, ...]; expect is the
//   exact string FindProxyForURL must return ("DIRECT", "PROXY a:1; PROXY b:2; DIRECT").
// Exit status: 0 when every row matches, 1 on a mismatch or an exception in the PAC, 2 on a
// usage, file or syntax error. Each failure is printed.
//
// The PAC runs in a fresh vm context holding the standard PAC functions. The DNS ones
// (dnsResolve, isResolvable, and isInNet on a host that is not an IPv4 literal) throw: a
// generated PAC must never make browsers resolve a host to route it.
'use strict';
const fs = require('fs');
const vm = require('vm');

function usage(msg) {
	process.stderr.write('pac_eval: ' + msg + '\nusage: pac_eval.js PAC_FILE TABLE_JSON\n');
	process.exit(2);
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function v4num(s) {
	const m = V4.exec(s);
	if (!m)
		return null;
	let n = 0;
	for (let i = 1; i <= 4; i++) {
		const o = Number(m[i]);
		if (o > 255)
			return null;
		n = n * 256 + o;
	}
	return n;
}

const pacFunctions = {
	isPlainHostName: (host) => host.indexOf('.') < 0,
	dnsDomainIs: (host, domain) => host.length >= domain.length &&
		host.substring(host.length - domain.length) === domain,
	localHostOrDomainIs: (host, hostdom) =>
		host === hostdom || hostdom.lastIndexOf(host + '.', 0) === 0,
	dnsDomainLevels: (host) => host.split('.').length - 1,
	shExpMatch: (str, pat) => {
		const re = '^' + pat.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')
			.replace(/\?/g, '.') + '$';
		return new RegExp(re).test(str);
	},
	isInNet: (host, pattern, mask) => {
		const h = v4num(host), p = v4num(pattern), m = v4num(mask);
		if (h === null)
			throw new Error('isInNet(' + JSON.stringify(host) +
			                '): not an IPv4 literal, a browser would resolve it');
		if (p === null || m === null)
			throw new Error('isInNet: bad pattern or mask ' + pattern + ' ' + mask);
		// Unsigned 32-bit and: split to stay exact.
		const and = (a, b) => ((Math.floor(a / 65536) & Math.floor(b / 65536)) * 65536) +
			((a % 65536) & (b % 65536));
		return and(h, m) === and(p, m);
	},
	dnsResolve: (host) => { throw new Error('dnsResolve(' + host + ') called'); },
	isResolvable: (host) => { throw new Error('isResolvable(' + host + ') called'); },
	myIpAddress: () => '127.0.0.1',
};

function main() {
	const args = process.argv.slice(2);
	if (args.length !== 2)
		usage('expected 2 arguments');
	let src, table;
	try {
		src = fs.readFileSync(args[0], 'utf8');
	} catch (e) {
		usage('cannot read ' + args[0] + ': ' + e.message);
	}
	try {
		table = JSON.parse(fs.readFileSync(args[1], 'utf8'));
	} catch (e) {
		usage('cannot read table ' + args[1] + ': ' + e.message);
	}
	if (!Array.isArray(table))
		usage('the table must be a JSON array');
	const ctx = vm.createContext(Object.assign({}, pacFunctions));
	try {
		vm.runInContext(src, ctx, { filename: args[0], timeout: 5000 });
	} catch (e) {
		process.stderr.write('pac_eval: ' + args[0] + ' does not load: ' + e.stack + '\n');
		process.exit(2);
	}
	if (typeof ctx.FindProxyForURL !== 'function') {
		process.stderr.write('pac_eval: ' + args[0] + ' defines no FindProxyForURL\n');
		process.exit(2);
	}
	let bad = 0;
	for (const row of table) {
		let got;
		try {
			ctx.__url = row.url;
			ctx.__host = row.host;
			got = vm.runInContext('FindProxyForURL(__url, __host)', ctx,
			                      { timeout: 1000 });
		} catch (e) {
			got = 'exception: ' + e.message;
		}
		if (got !== row.expect) {
			bad++;
			process.stdout.write('MISMATCH ' + JSON.stringify(row.url) + ' host ' +
			                     JSON.stringify(row.host) + ': got ' +
			                     JSON.stringify(got) + ', expected ' +
			                     JSON.stringify(row.expect) + '\n');
		}
	}
	process.stdout.write('pac_eval: ' + (table.length - bad) + '/' + table.length +
	                     ' rows ok\n');
	process.exit(bad ? 1 : 0);
}

main();
