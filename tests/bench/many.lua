-- many.lua - wrk script for the many-objects benchmark: each request asks for one of N files
-- f0.bin .. f{N-1}.bin under a base URL, chosen at random (N = 10000 unless given).
-- Usage:
--   wrk ... -s many.lua http://PROXY:PORT/ -- http://ORIGIN:PORT/many/ [N]   (through a proxy)
--   wrk ... -s many.lua http://ORIGIN:PORT/ -- direct /many/ [N]             (direct)
-- done() prints the same "BENCH ..." line as absolute.lua.
local base, count = nil, 10000

function init(args)
	if args[1] == "direct" then
		base = args[2]
		count = tonumber(args[3] or "10000")
	else
		base = args[1]
		count = tonumber(args[2] or "10000")
		wrk.headers["Host"] = base:match("^%a+://([^/]+)")
	end
	math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
	return wrk.format("GET", base .. "f" .. math.random(0, count - 1) .. ".bin")
end

function done(summary, latency, requests)
	local e = summary.errors
	local errors = e.connect + e.read + e.write + e.timeout + e.status
	local secs = summary.duration / 1e6
	io.write(string.format("BENCH rps=%.1f p50_us=%d p99_us=%d errors=%d requests=%d bytes=%d\n",
		summary.requests / secs, latency:percentile(50), latency:percentile(99), errors,
		summary.requests, summary.bytes))
end
