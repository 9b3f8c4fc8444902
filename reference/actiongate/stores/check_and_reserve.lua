--[[
check_and_reserve.lua: one ActionGate check of one gate, atomic (SEMANTICS.md section 5).

A port of EventLog.check in reference/actiongate/_decide.py, step for step: prune (RET-1, RET-2),
cooldown (CD-1) before the rate limit (RATE-1, ORD-1), reserve one event on an ALLOW (RES-1).
The vectors prove it equal to the MemoryStore, bit for bit (but for the sign of a zero
age, which TIME-2 never compares). SEMANTICS.md Appendix B describes
the key layout for ports in other languages.

Units: seconds, IEEE-754 binary64 (a Lua number is a C double; TIME-2).
Numbers cross every boundary as text that reads back as the same double: the caller sends
%.17g (or repr) text, this script writes string.format("%.17g", x) and reads text with
tonumber's conversion (as s * 1, see below). Never tostring or .. on a number: both format
with 14 significant digits and lose bits. Arguments of redis.call are text too, so exactness
does not rest on how a Redis version converts numbers. The caller does the formatting it can
(T, T - window), so that a check with the caller's clock formats no time here at all.

KEYS[1]  the gate's key, a sorted set: one member per event, score = the event's time t,
         member = "<%.17g of t>:<k>" where k is the count of events at t before this one
ARGV[1]  now: the time T of the check as %.17g text; "" to read the server's clock (TIME)
ARGV[2]  window, or "" for null (an unbounded window, RET-3)
ARGV[3]  cooldown
ARGV[4]  max_calls, a decimal integer
ARGV[5]  margin >= 0: seconds added to the key's TTL beyond the time its newest event leaves
         the window (RET-4), for rounding and for clocks that run a little slow
ARGV[6]  T - window as %.17g text, computed by the caller in binary64; "" when the window is
         null or ARGV[1] is "" (then the script computes it)

Returns  one line of text, four fields separated by spaces:
         "<calls_in_window> <allowed> <last> <now>": calls_in_window in decimal (DEC-2); allowed
         1 or 0; last, the greatest retained event before this check's reservation, as Redis
         wrote its score, or "-" when R was empty; now, the T used as %.17g when it is the
         server's, else "-". The caller computes time_since_last = T - last in binary64 (DEC-3),
         the very subtraction this script would make. One bulk string rather than an array: a
         client parses it in one read, not five.

Cost: O(log n) in the retained events plus O(m) in the m events pruned; the set is never read
whole (ZRANGE reads one member). The expiry is set only when the key's TTL is too short, and
then to twice what is needed, so most checks read the TTL and write nothing but their event.
Per check Redis runs ZREMRANGEBYSCORE, ZCARD, ZRANGE and PTTL, and ZADD on an ALLOW, each
needed by a rule (RET-2, DEC-2, DEC-3, RET-4, RES-1); the Lua around them is kept to what a
check needs, since a strtod or a string.format costs about as much as a cheap command
(python -m actiongate.bench --start-redis measures it).
]]

local key = KEYS[1]

-- Text is read as a number by s * 1: Lua converts s with the one strtod tonumber uses (then
-- multiplies by 1, exact, -0 included), where tonumber(s) runs that strtod twice (lua_isnumber,
-- then lua_tonumber). Each is read where it is needed: most checks never read the cooldown.
local window_text = ARGV[2] -- "" when null
local now, now_text, cutoff_text, server_now
if ARGV[1] == "" then
    local function text(x)
        return string.format("%.17g", x)
    end
    -- TIME-1: one clock for every writer, the server's. Seconds plus microseconds, in doubles.
    -- Redis before 5 needs effects replication to write after a non-deterministic command.
    if redis.replicate_commands then
        redis.replicate_commands()
    end
    local time = redis.call("TIME")
    now = tonumber(time[1]) + tonumber(time[2]) / 1000000
    now_text = text(now)
    server_now = now_text
    if window_text ~= "" then
        cutoff_text = text(now - window_text * 1)
    end
else
    now_text = ARGV[1]
    now = now_text * 1
    server_now = "-"
    cutoff_text = ARGV[6]
end

-- RET-1: an event is retained iff t >= now - window (the subtraction in doubles, as in Python);
-- RET-2: the rest go for good, on an ALLOW and a BLOCK alike. "(" makes the bound exclusive,
-- so an event exactly window old stays. A null window retains everything (RET-3).
if window_text ~= "" then
    redis.call("ZREMRANGEBYSCORE", key, "-inf", "(" .. cutoff_text)
end
local retained = redis.call("ZCARD", key)

-- DEC-3: the greatest retained event, before the reservation; its age is negative when the
-- clock stepped back past it (CLK-1). One member read, from the top of the set.
local last = nil
local last_text = "-"
if retained > 0 then
    last_text = redis.call("ZRANGE", key, "-1", "-1", "WITHSCORES")[2]
    last = last_text * 1
end

-- ORD-1: cooldown first (CD-1), then the rate limit (RATE-1). DEC-2: a BLOCK reports |R|.
-- A cooldown of "0.0" (repr of the default) is not parsed: CD-1 needs a cooldown > 0.
local cooldown = ARGV[3]
local cooling = false
if last ~= nil and cooldown ~= "0.0" then
    cooldown = cooldown * 1
    cooling = cooldown > 0 and now - last < cooldown
end
local allowed = " 0 "
local newest = last
if not (cooling or retained >= ARGV[4] * 1) then
    -- RES-1, RES-2: exactly one event at now, under a member no other event holds: the events
    -- at one score are always pruned together, so they are "<now>:0" .. "<now>:<k-1>". Most
    -- checks are the first at their time, so try "<now>:0" first and count only if it exists.
    if redis.call("ZADD", key, "NX", now_text, now_text .. ":0") == 0 then
        local k = redis.call("ZCOUNT", key, now_text, now_text)
        redis.call("ZADD", key, now_text, now_text .. ":" .. string.format("%d", k))
    end
    retained = retained + 1 -- DEC-2: an ALLOW counts the call it allows
    allowed = " 1 "
    if newest == nil or now > newest then
        newest = now
    end
end

-- RET-4: the key must not expire before its newest event has left the window of this, the
-- latest, check: newest + window - now seconds of the caller's clock, read as real seconds,
-- plus the margin. A longer TTL is always allowed, so a short one is raised to twice what is
-- needed, and the next checks find it long enough and leave it. A null window never expires,
-- nor does a key whose TTL would pass 2^52 ms (142,000 years; PEXPIRE would overflow).
-- An empty set has no key (Redis deletes it).
if retained > 0 then
    local ms = nil
    if window_text ~= "" then
        local window = window_text * 1
        local margin = tonumber(ARGV[5]) or 0
        ms = math.max(math.ceil((newest + window - now + margin) * 1000), 1)
    end
    local ttl = redis.call("PTTL", key) -- -1: no expiry
    if ms and ms < 2251799813685248 then
        if ttl == -1 or ttl < ms then
            redis.call("PEXPIRE", key, string.format("%.0f", 2 * ms))
        end
    elseif ttl ~= -1 then
        redis.call("PERSIST", key)
    end
end

-- The count is the one number formatted here; the rest is text already. One string.format of
-- four fields costs twice this.
return string.format("%d", retained) .. allowed .. last_text .. " " .. server_now
