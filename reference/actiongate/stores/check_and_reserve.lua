--[[
check_and_reserve.lua: one ActionGate check of one gate, atomic (SEMANTICS.md section 5).

A port of EventLog.check in reference/actiongate/_decide.py, step for step: prune (RET-1, RET-2),
cooldown (CD-1) before the rate limit (RATE-1, ORD-1), reserve one event on an ALLOW (RES-1).
The vectors prove it equal to the MemoryStore, bit for bit (but for the sign of a zero
age, which TIME-2 never compares). SEMANTICS.md Appendix B describes the key layout (layout 2)
for ports in other languages.

Units: seconds, IEEE-754 binary64 (a Lua number is a C double; TIME-2).
Numbers cross every boundary as text that reads back as the same double: the caller sends
%.17g (or repr) text, this script writes string.format("%.17g", x) and reads text with
tonumber's conversion (as s * 1: one strtod, where tonumber(s) runs two). Never tostring or ..
on a number: both format with 14 significant digits and lose bits. The caller does the
arithmetic and formatting it can (T, T - window, window + margin), so that most checks format
no time here.

KEYS[1]  the gate's key, a sorted set: one member per event, score = the event's time t,
         member = "<text of t>:<k>" where k is the count of events at t before this one; and
         one more member, the record, score -inf: "|<count>|<oldest>|<newest>|<span>|<reach>"
ARGV[1]  now: the time T of the check as %.17g text; "" to read the server's clock (TIME)
ARGV[2]  window + margin, in binary64, or "" when the window is null (RET-3): the key lives
         until its newest event is that old (RET-4); the margin >= 0 is for rounding and for
         clocks that run a little slow
ARGV[3]  T - window as %.17g text, in binary64; with the server's clock (ARGV[1] "") the
         window instead, for the script to subtract; "" when the window is null
ARGV[4]  cooldown
ARGV[5]  max_calls, a decimal integer

The record holds what a check needs besides the events: how many there are; the oldest one's
time, or a lower bound of it; the newest one's time; and how long the key's expiry lasts: the
window + margin ("span") it was checked for, and its reach, the greatest newest time it covers
("p" when the key has no expiry). It sorts first, so a check reads it with one ZRANGE 0 0, and
prunes only when the oldest time is below T - window: most BLOCKs read one member and write
nothing. A check that changes the set or the expiry writes the record anew; a prune takes the
old one with the events (score -inf). A key without one (layout 1) is read the long way.

Returns  one line of text, four fields separated by spaces:
         "<calls_in_window> <allowed> <last> <now>": calls_in_window in decimal (DEC-2); allowed
         1 or 0; last, the greatest retained event before this check's reservation, as text
         of its time, or "-" when R was empty; now, the T used as %.17g when it is the
         server's, else "-". The caller computes time_since_last = T - last in binary64
         (DEC-3), the very subtraction this script would make. One bulk string rather than an
         array: a client parses it in one read.

Cost: O(log n) in the retained events plus O(m) in the m events pruned; the set is never read
whole. A BLOCK reads the record. An ALLOW reads it, prunes (or removes it) and adds its event
with the new record in one ZADD. The Lua around the commands is kept to what a check needs: a
redis.call costs about 0.4 us, a string.match 0.25 us, a strtod 0.06 us, a string.format 0.08
to 0.4 us (python -m actiongate.bench --start-redis measures the whole).
]]

local key = KEYS[1]
local span_text = ARGV[2] -- window + margin; "" when the window is null

local now, now_text, cutoff_text, server_now
if ARGV[1] == "" then
    -- TIME-1: one clock for every writer, the server's. Seconds plus microseconds, in doubles.
    -- Redis before 5 needs effects replication to write after a non-deterministic command.
    if redis.replicate_commands then
        redis.replicate_commands()
    end
    local time = redis.call("TIME")
    now = tonumber(time[1]) + tonumber(time[2]) / 1000000
    now_text = string.format("%.17g", now)
    server_now = now_text
    if span_text ~= "" then
        cutoff_text = string.format("%.17g", now - ARGV[3] * 1)
    end
else
    now_text = ARGV[1] -- read as a number only where a rule needs it (most BLOCKs do not)
    server_now = "-"
    cutoff_text = ARGV[3]
end

-- The record: one member read. A key of layout 1 (events, no record) is read the long way.
local head = redis.call("ZRANGE", key, "0", "0")[1]
local count, count_text, oldest_text, last_text, recorded_span = 0, nil, nil, nil, nil
local reach, reach_at = nil, nil -- the record's reach, and where it starts: read when needed
local stored = nil -- the record as the key holds it, until a prune removes it
local exists = head ~= nil -- a key that exists keeps its expiry; a new one has none
if head then
    count_text, oldest_text, last_text, recorded_span, reach_at =
        string.match(head, "^|(%d+)|([^|]*)|([^|]*)|([^|]*)|()")
    if count_text then
        count, stored = count_text * 1, head
    else
        if span_text ~= "" then
            redis.call("ZREMRANGEBYSCORE", key, "-inf", "(" .. cutoff_text)
        end
        count = redis.call("ZCARD", key)
        if count > 0 then
            last_text = redis.call("ZRANGE", key, "-1", "-1", "WITHSCORES")[2]
            oldest_text = redis.call("ZRANGE", key, "0", "0", "WITHSCORES")[2]
        end
    end
end

-- RET-1: an event is retained iff t >= T - window (the subtraction in doubles, as in Python);
-- RET-2: the rest go for good, on an ALLOW and a BLOCK alike. "(" makes the bound exclusive,
-- so an event exactly window old stays. A null window retains everything (RET-3). Only when
-- the record's oldest time (a lower bound) is below T - window can there be any to prune;
-- "-inf" takes the record too (its score), which is written anew below.
local pruned = false -- the oldest is not known until read or bounded
local oldest = nil
if stored and span_text ~= "" then
    oldest = oldest_text * 1
    if oldest < cutoff_text * 1 then
        local removed = redis.call("ZREMRANGEBYSCORE", key, "-inf", "(" .. cutoff_text)
        count, count_text, stored, pruned = count - removed + 1, nil, nil, true
    end
end
if count == 0 then
    -- No events: no key (Redis deletes an emptied key, and its expiry).
    exists, last_text, recorded_span, reach_at = false, nil, nil, nil
end

-- DEC-3: the greatest retained event, before the reservation; its age is negative when the
-- clock stepped back past it (CLK-1). ORD-1: cooldown first (CD-1), then the rate limit
-- (RATE-1). DEC-2: a BLOCK reports |R|. A cooldown of "0.0" (repr of the default) is not
-- parsed: CD-1 needs a cooldown > 0.
local last = nil -- read below where a rule needs it
local cooldown = ARGV[4]
local cooling = false
if last_text and cooldown ~= "0.0" then
    now, last = now or now_text * 1, last_text * 1
    cooldown = cooldown * 1
    cooling = cooldown > 0 and now - last < cooldown
end
local allowed = " 0 "
local newest, newest_text = last, last_text
local added = false
if not (cooling or count >= ARGV[5] * 1) then
    now = now or now_text * 1
    if last_text then
        newest = last or last_text * 1
    end
    if newest == nil or now > newest then
        newest, newest_text = now, now_text
    end
    if pruned then
        oldest_text = cutoff_text -- every event left is at or after it: a lower bound
    elseif count == 0 or now < (oldest or oldest_text * 1) then
        oldest_text = now_text
    end
    count, count_text = count + 1, nil -- DEC-2: an ALLOW counts the call it allows
    allowed = " 1 "
    added = true
elseif stored and recorded_span == span_text then
    -- Most BLOCKs: nothing pruned, and the expiry already checked for this window + margin.
    return count_text .. " 0 " .. last_text .. " " .. server_now
elseif pruned and count > 0 then
    -- The exact oldest, so that later BLOCKs prune nothing until it leaves the window.
    oldest_text = redis.call("ZRANGE", key, "0", "0", "WITHSCORES")[2]
end

-- RET-4: the key must not expire before its newest event is window + margin old on the
-- callers' clock, read as real seconds. A longer TTL is always allowed, so a short one is
-- raised to twice what is needed, and the record keeps its reach: the greatest newest event
-- time it covers with this window + margin (rounded down to whole seconds), or "p" when the
-- key has no expiry. So a check with the same newest event, window and margin looks at
-- nothing, and an ALLOW within the reach reads no TTL. A null window never expires, nor does
-- a key whose TTL would pass 2^51 ms (71,000 years; PEXPIRE would overflow). An empty set has
-- no key.
local expire = nil -- what to set after the writes: a TTL in ms as text, or "persist"
local rewrite = added or stored == nil
if count > 0 and (recorded_span ~= span_text or newest_text ~= last_text) then
    if reach_at then
        reach = string.sub(head, reach_at)
    end
    local was_reach = reach
    if span_text == "" then
        if exists and reach ~= "p" then
            expire = "persist"
        end
        reach = "p"
    else
        now = now or now_text * 1
        newest = newest or newest_text * 1
        if recorded_span ~= span_text or reach == "p" or newest > reach * 1 then
            local span = span_text * 1
            local ms = math.max(math.ceil((newest + span - now) * 1000), 1)
            if ms < 2251799813685248 then
                local ttl = -1 -- no expiry
                if exists then
                    ttl = redis.call("PTTL", key)
                end
                if ttl < ms then
                    ttl = 2 * ms
                    expire = string.format("%.0f", ttl)
                end
                -- less 1 ms for the rounding of the TTL
                local upto = math.floor(now + (ttl - 1) / 1000 - span)
                if upto > -2251799813685248 and upto < 2251799813685248 then
                    reach = string.format("%d", upto)
                else
                    reach = string.format("%.17g", upto)
                end
            else
                if exists and reach ~= "p" then
                    expire = "persist"
                end
                reach = "p"
            end
        end
    end
    rewrite = rewrite or reach ~= was_reach or recorded_span ~= span_text
end

-- RES-1, RES-2: exactly one event at T, under a member no other event holds: the events at one
-- score are always pruned together, so they are "<T>:0" .. "<T>:<k-1>". Most checks are the
-- first at their time, so try "<T>:0" first and count only if it exists. The old record goes
-- before its successor comes: the two may be equal.
count_text = count_text or string.format("%d", count)
if count > 0 and rewrite then
    if stored then
        redis.call("ZREM", key, stored)
    end
    reach = reach or string.sub(head, reach_at)
    local successor = "|" .. count_text .. "|" .. oldest_text .. "|" .. newest_text .. "|"
        .. span_text .. "|" .. reach
    if added then
        if redis.call("ZADD", key, now_text, now_text .. ":0", "-inf", successor) < 2 then
            local k = redis.call("ZCOUNT", key, now_text, now_text)
            redis.call("ZADD", key, now_text, now_text .. ":" .. string.format("%d", k))
        end
    else
        redis.call("ZADD", key, "-inf", successor)
    end
    if expire == "persist" then
        redis.call("PERSIST", key)
    elseif expire then
        redis.call("PEXPIRE", key, expire)
    end
end

return count_text .. allowed .. (last_text or "-") .. " " .. server_now
