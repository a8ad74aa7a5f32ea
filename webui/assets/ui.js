/* ui.js - the status page's one script (issue 11). Pages work without it; it only makes
 * things nicer: a confirmation on forms marked data-confirm. h4 adds the refresh of numbers
 * and charts here. No inline script anywhere (CSP default-src 'self'). */
"use strict";
(function () {
	document.addEventListener("submit", function (ev) {
		var f = ev.target;
		var msg = f && f.getAttribute && f.getAttribute("data-confirm");
		if (msg && !window.confirm(msg))
			ev.preventDefault();
	});
})();

/* Refresh (h4, charts, top lists, recent requests): every element with data-gh-refresh="URL"
 * gets its content replaced by what URL returns (a server-rendered HTML fragment, the same
 * markup the page was rendered with) every data-gh-every seconds (5 by default), while the
 * tab is visible. The fragment is parsed with DOMParser, never run: no eval, no inline
 * script. A failed fetch leaves the old content in place. */
(function () {
	if (!window.fetch || !window.DOMParser)
		return;
	var els = Array.prototype.slice.call(document.querySelectorAll("[data-gh-refresh]"));
	els.forEach(function (el) {
		var every = parseInt(el.getAttribute("data-gh-every") || "5", 10);
		if (!(every >= 1))
			every = 5;
		var busy = false;
		window.setInterval(function () {
			if (busy || document.hidden)
				return;
			busy = true;
			fetch(el.getAttribute("data-gh-refresh"),
			      { credentials: "same-origin", headers: { "Accept": "text/html" } })
				.then(function (r) {
					if (!r.ok)
						throw new Error("HTTP " + r.status);
					return r.text();
				})
				.then(function (text) {
					var doc = new DOMParser().parseFromString(
						"<!DOCTYPE html><body>" + text + "</body>", "text/html");
					var nodes = Array.prototype.slice.call(doc.body.childNodes);
					while (el.firstChild)
						el.removeChild(el.firstChild);
					nodes.forEach(function (n) {
						el.appendChild(document.adoptNode(n));
					});
				})
				.catch(function () { /* keep what is shown */ })
				.then(function () { busy = false; });
		}, every * 1000);
	});
})();
