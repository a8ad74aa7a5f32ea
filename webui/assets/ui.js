/* ui.js - the status page's one script (issue 11). Pages work without it; it only makes
 * things nicer: a confirmation on forms marked data-confirm, and the refresh of the figures,
 * charts and lists below. No inline script anywhere (CSP default-src 'self'). */
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

/* Refresh of the overview's figures: every <span data-ov="KEY"> takes the text of KEY in
 * api/overview's "display" object (the same text the page was rendered with) every 5 seconds
 * while the tab is visible. The URL is relative: the overview is the <Location>'s index. */
(function () {
	if (!window.fetch)
		return;
	var spans = Array.prototype.slice.call(document.querySelectorAll("span[data-ov]"));
	if (!spans.length)
		return;
	var busy = false;
	window.setInterval(function () {
		if (busy || document.hidden)
			return;
		busy = true;
		fetch("api/overview", { credentials: "same-origin",
		                        headers: { "Accept": "application/json" } })
			.then(function (r) {
				if (!r.ok)
					throw new Error("HTTP " + r.status);
				return r.json();
			})
			.then(function (j) {
				var d = j && j.display;
				if (!d)
					return;
				spans.forEach(function (s) {
					var k = s.getAttribute("data-ov");
					if (Object.prototype.hasOwnProperty.call(d, k))
						s.textContent = String(d[k]);
				});
			})
			.catch(function () { /* keep what is shown */ })
			.then(function () { busy = false; });
	}, 5000);
})();
