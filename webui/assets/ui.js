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
