-- absolute.lua - wrk script for the Gatehouse benchmark.
--
-- wrk has no proxy support, so to drive a forward proxy this script sends absolute-form
-- requests ("GET http://origin/path HTTP/1.1") to whatever address wrk connects to. Usage:
--   wrk ... -s absolute.lua http://PROXY:PORT/ -- http://ORIGIN:PORT/path   (through a proxy)
--   wrk ... -s absolute.lua http://ORIGIN:PORT/path                         (direct)
-- done() prints one machine-readable line: "BENCH rps=... p50_us=... p99_us=... errors=..."
local req = nil

function init(args)
	local target = args[1]
	if target ~= nil and target ~= "" then
		local authority = target:match("^%a+://([^/]+)")
		wrk.headers["Host"] = authority
		req = wrk.format("GET", target)
	end
end

function request()
	if req ~= nil then
		return req
	end
	return wrk.format()
end

function done(summary, latency, requests)
	local e = summary.errors
	local errors = e.connect + e.read + e.write + e.timeout + e.status
	local secs = summary.duration / 1e6
	io.write(string.format("BENCH rps=%.1f p50_us=%d p99_us=%d errors=%d requests=%d bytes=%d\n",
		summary.requests / secs, latency:percentile(50), latency:percentile(99), errors,
		summary.requests, summary.bytes))
end
