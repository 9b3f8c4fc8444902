--[[
check_and_reserve.lua: one ActionGate check of one gate, atomic (SEMANTICS.md section 5).

A port of EventLog.check in reference/actiongate/_decide.py, step for step: prune (RET-1, RET-2),
cooldown (CD-1) before the rate limit (RATE-1, ORD-1), reserve one event on an ALLOW (RES-1).
The vectors prove it equal to the MemoryStore, bit for bit (but for the sign of a zero
age, which TIME-2 never compares). SEMANTICS.md Appendix B describes
the key layout for ports in other languages.

Units: seconds, IEEE-754 binary64 (a Lua number is a C double; TIME-2).
Numbers cross every boundary as text that reads back as the same double: the caller sends
repr(float), this script writes string.format("%.17g", x) and reads text with tonumber. Never
tostring or .. on a number: both format with 14 significant digits and lose bits. Arguments of
redis.call are text too, so exactness does not rest on how a Redis version converts numbers.

KEYS[1]  the gate's key, a sorted set: one member per event, score = the event's time t,
         member = "<%.17g of t>:<k>" where k is the count of events at t before this one
ARGV[1]  now: the time T of the check; "" to read the server's clock (TIME) instead
ARGV[2]  window, or "" for null (an unbounded window, RET-3)
ARGV[3]  cooldown
ARGV[4]  max_calls, a decimal integer
ARGV[5]  margin >= 0: seconds added to the key's TTL beyond the time its newest event leaves
         the window (RET-4), for rounding and for clocks that run a little slow

Returns  one line of text, four fields separated by spaces:
         "<calls_in_window> <allowed> <time_since_last> <now>": calls_in_window in decimal
         (DEC-2); allowed 1 or 0; time_since_last as %.17g, or "-" when R is empty (DEC-3);
         now as %.17g, the T used, which is the server's time when ARGV[1] is "".
         One bulk string rather than an array: a client parses it in one read, not five.

Cost: O(log n) in the retained events plus O(m) in the m events pruned; the set is never read
whole (ZRANGE reads one member).
]]

local key = KEYS[1]

local function text(x)
    return string.format("%.17g", x)
end

local now
if ARGV[1] == "" then
    -- TIME-1: one clock for every writer, the server's. Seconds plus microseconds, in doubles.
    -- Redis before 5 needs effects replication to write after a non-deterministic command.
    if redis.replicate_commands then
        redis.replicate_commands()
    end
    local time = redis.call("TIME")
    now = tonumber(time[1]) + tonumber(time[2]) / 1000000
else
    now = tonumber(ARGV[1])
end
local window = tonumber(ARGV[2]) -- nil when null
local cooldown = tonumber(ARGV[3])
local max_calls = tonumber(ARGV[4])
local margin = tonumber(ARGV[5]) or 0

-- RET-1: an event is retained iff t >= now - window (the subtraction in doubles, as in Python);
-- RET-2: the rest go for good, on an ALLOW and a BLOCK alike. "(" makes the bound exclusive,
-- so an event exactly window old stays. A null window retains everything (RET-3).
if window then
    redis.call("ZREMRANGEBYSCORE", key, "-inf", "(" .. text(now - window))
end
local retained = redis.call("ZCARD", key)

-- DEC-3: the age of the greatest retained event, before the reservation; negative when the
-- clock stepped back past it (CLK-1). One member read, from the top of the set.
local last = nil
local time_since_last = false
if retained > 0 then
    last = tonumber(redis.call("ZRANGE", key, "-1", "-1", "WITHSCORES")[2])
    time_since_last = now - last
end

-- ORD-1: cooldown first (CD-1), then the rate limit (RATE-1). DEC-2: a BLOCK reports |R|.
local allowed = 0
local newest = last
if not ((cooldown > 0 and last ~= nil and time_since_last < cooldown) or retained >= max_calls) then
    -- RES-1, RES-2: exactly one event at now, under a member no other event holds: the events
    -- at one score are always pruned together, so they are "<now>:0" .. "<now>:<k-1>". Most
    -- checks are the first at their time, so try "<now>:0" first and count only if it exists.
    local score = text(now)
    if redis.call("ZADD", key, "NX", score, score .. ":0") == 0 then
        local k = redis.call("ZCOUNT", key, score, score)
        redis.call("ZADD", key, score, score .. ":" .. string.format("%d", k))
    end
    retained = retained + 1 -- DEC-2: an ALLOW counts the call it allows
    allowed = 1
    if newest == nil or now > newest then
        newest = now
    end
end

-- RET-4: expire the key only after its newest event has left the window of this, the latest,
-- check: newest + window - now seconds of the caller's clock, read as real seconds, plus the
-- margin. A null window never expires. An empty set has no key (Redis deletes it).
if retained > 0 then
    local ms = nil
    if window then
        ms = math.ceil((newest + window - now + margin) * 1000)
    end
    -- Beyond 2^52 ms (142,000 years) the key simply persists: PEXPIRE would overflow.
    if ms and ms < 4503599627370496 then
        redis.call("PEXPIRE", key, string.format("%.0f", math.max(ms, 1)))
    else
        redis.call("PERSIST", key)
    end
end

return string.format(
    "%d %d %s %s", retained, allowed, time_since_last and text(time_since_last) or "-", text(now)
)
