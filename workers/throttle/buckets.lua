-- One atomic throttle decision for one bucket (see workers/throttle.py for the model).
-- KEYS: 1 state hash, 2 flows zset (flow -> next turn), 3 waiting hash (flow -> next return),
--       4 slots zset (lease -> expiry), 5 live marker of the asking org
-- ARGV: 1 now_ms (-1: Redis TIME), 2 rate/s, 3 burst, 4 concurrency, 5 lease_ms, 6 horizon_ms,
--       7 idle_ms, 8 flow, 9 flow rate/s (0: none), 10 flow burst, 11 backfill 0|1,
--       12 ticket_ms (0: none), 13 lease id, 14 cost, 15 recovery/s,
--       16 op (acquire | release | refund | penalize | sync),
--       17 width: slots a grant holds (the writes one request sends at once)
-- Returns {granted 0|1, wait_ms, ticket_ms, reason}.
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local op = ARGV[16]
local s = redis.call('HMGET', KEYS[1], 'tokens', 'stamp', 'factor', 'fstamp', 'cooldown')
local rate = tonumber(ARGV[2]) / 1000.0
local burst = tonumber(ARGV[3])
local tokens = tonumber(s[1]) or burst
local stamp = tonumber(s[2]) or now
local factor = tonumber(s[3]) or 1.0
local fstamp = tonumber(s[4]) or now
local cooldown = tonumber(s[5]) or 0
local recover = tonumber(ARGV[15]) / 1000.0
if factor < 1.0 and now > fstamp then
  factor = math.min(1.0, factor + recover * (now - fstamp))
  fstamp = now
end
local r = rate * factor
if now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * r)
  stamp = now
end
local ttl = 86400000

local function save()
  redis.call('HSET', KEYS[1], 'tokens', tokens, 'stamp', stamp, 'factor', factor,
    'fstamp', fstamp, 'cooldown', cooldown, 'rate', ARGV[2], 'burst', ARGV[3],
    'concurrency', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ttl)
end

-- a grant of width w holds w slots: its lease, then lease#2 .. lease#w
local width = tonumber(ARGV[17]) or 1
local function free_slots()
  redis.call('ZREM', KEYS[4], ARGV[13])
  for i = 2, width do redis.call('ZREM', KEYS[4], ARGV[13] .. '#' .. i) end
end

if op == 'release' then
  free_slots()
  return {1, 0, 0, 'released'}
end

if op == 'refund' then
  -- a grant taken but never spent (its partner bucket said wait): tokens back, slot freed
  free_slots()
  tokens = math.min(burst, tokens + tonumber(ARGV[14]))
  save()
  return {1, 0, 0, 'refunded'}
end

if op == 'penalize' then
  -- ARGV[12] carries the provider's wait in ms; one halving per cooldown, not per 429
  local until_ms = now + tonumber(ARGV[12])
  if cooldown <= now then
    factor = math.max(tonumber(ARGV[10]), factor * 0.5)
  end
  cooldown = math.max(cooldown, until_ms)
  fstamp = cooldown
  tokens = 0
  save()
  redis.call('HINCRBY', KEYS[1], 'n_429', 1)
  return {1, cooldown - now, 0, 'cooldown'}
end

if op == 'sync' then
  -- the provider says how much is left: never believe we hold more than that, counting
  -- the writes in flight; with nothing left, hold every worker off for ARGV[10] ms
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  local left = tonumber(ARGV[12]) - redis.call('ZCARD', KEYS[4])
  tokens = math.max(0, math.min(tokens, left))
  if left <= 0 then cooldown = math.max(cooldown, now + tonumber(ARGV[10])) end
  save()
  return {1, math.max(0, cooldown - now), 0, 'synced'}
end

local function reply(granted, wait, ticket, why)
  save()
  redis.call('HINCRBY', KEYS[1], 'n_' .. why, 1)
  if wait > 0 then redis.call('HINCRBY', KEYS[1], 'wait_ms', math.ceil(wait)) end
  return {granted, math.ceil(wait), ticket, why}
end

local cost = tonumber(ARGV[14])
local ticket = tonumber(ARGV[12])
-- an org's live and backfill pushes are separate flows; live ones displace backfill
local flow = ARGV[8]
if ARGV[11] == '1' then flow = flow .. '|backfill' end
local flow_rate = tonumber(ARGV[9]) / 1000.0
local step = cost / r
if flow_rate > 0 then step = math.max(step, cost / flow_rate) end

if ticket == 0 then
  local idle = tonumber(ARGV[7])
  local horizon = tonumber(ARGV[6])
  local wait_at = tonumber(redis.call('HGET', KEYS[3], flow)) or 0
  if ARGV[11] == '1' then
    local live_ms = redis.call('PTTL', KEYS[5])
    if live_ms > 0 then
      -- live meetings of this org go first: come back once they are through
      local at = math.max(wait_at, now + live_ms)
      redis.call('HSET', KEYS[3], flow, at + step)
      redis.call('PEXPIRE', KEYS[3], ttl)
      return reply(0, at - now, 0, 'priority')
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - idle)
  local tat = tonumber(redis.call('ZSCORE', KEYS[2], flow))
  local n = redis.call('ZCARD', KEYS[2])
  if not tat then n = n + 1; tat = now end
  -- each active flow gets an equal share of the bucket, capped by its own limit
  local spacing = cost * n / r
  local tau = (burst - 1) / r
  if flow_rate > 0 then
    spacing = math.max(spacing, cost / flow_rate)
    tau = math.min(tau, (tonumber(ARGV[10]) - 1) / flow_rate)
  end
  tat = math.max(tat, now, cooldown)
  local turn = math.max(now, cooldown, tat - tau)
  if turn - now > horizon then
    -- beyond the horizon: no ticket; come back in line, spaced so returns do not herd
    local at = math.max(wait_at, turn - horizon)
    redis.call('HSET', KEYS[3], flow, at + step)
    redis.call('PEXPIRE', KEYS[3], ttl)
    return reply(0, at - now, 0, 'queued')
  end
  redis.call('ZADD', KEYS[2], tat + spacing, flow)
  redis.call('PEXPIRE', KEYS[2], ttl)
  if ARGV[11] ~= '1' then
    redis.call('SET', KEYS[5], '1', 'PX', math.ceil(tat + spacing - now + idle))
    redis.call('ZREM', KEYS[2], flow .. '|backfill')
  end
  ticket = math.max(turn, 1)
  if turn > now then return reply(0, turn - now, ticket, 'turn') end
end

if ticket > now then return reply(0, ticket - now, ticket, 'turn') end
if cooldown > now then return reply(0, cooldown - now, ticket, 'cooldown') end
if tokens < cost then return reply(0, (cost - tokens) / r, ticket, 'tokens') end
-- a flow's own limit holds at execution too: turns that run late must not bunch up
local ftokens = 0
if flow_rate > 0 then
  local fb = tonumber(ARGV[10])
  local f = redis.call('HMGET', KEYS[3], 'tok:' .. flow, 'at:' .. flow)
  ftokens = tonumber(f[1]) or fb
  local fat = tonumber(f[2]) or now
  if now > fat then ftokens = math.min(fb, ftokens + (now - fat) * flow_rate) end
  redis.call('HSET', KEYS[3], 'tok:' .. flow, ftokens, 'at:' .. flow, now)
  if ftokens < cost then return reply(0, (cost - ftokens) / flow_rate, ticket, 'flow') end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
if redis.call('ZCARD', KEYS[4]) + width > tonumber(ARGV[4]) then
  local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  local poll = math.max(5, 1 / r)
  return reply(0, math.min(tonumber(first[2]) - now, poll), ticket, 'slots')
end
tokens = tokens - cost
if flow_rate > 0 then redis.call('HSET', KEYS[3], 'tok:' .. flow, ftokens - cost) end
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[5]), ARGV[13])
for i = 2, width do redis.call('ZADD', KEYS[4], now + tonumber(ARGV[5]), ARGV[13] .. '#' .. i) end
redis.call('PEXPIRE', KEYS[4], ttl)
return reply(1, 0, ticket, 'granted')
