-- Reserve takes units of a pool for one order, or says why it cannot.
--
-- KEYS: meta, stock, holds, bought, idem, attempts
-- ARGV: order id, user id, quantity, idem field ("" for none), hold head ("qty|user id|unix
--       ms"), idempotency key
--
-- Returns one of
--   {"OK", remaining, seq, generation}
--   {"DUPLICATE", earlier order id, remaining, generation}
--   {"NOT_LOADED"} | {"NOT_STARTED"} | {"ENDED"}
--   {"LIMIT_EXCEEDED", limit, units the user holds}
--   {"SOLD_OUT", remaining}
local meta, stock, holds, bought, idem, attempts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local order, user, qty = ARGV[1], ARGV[2], tonumber(ARGV[3])
local idemField, head, key = ARGV[4], ARGV[5], ARGV[6]

-- Load writes every meta field at once, so a missing field means a missing pool; a pool
-- without a generation was loaded by an older version and is rebuilt.
local terms = redis.call('HMGET', meta, 'starts_ms', 'ends_ms', 'limit', 'gen')
if not terms[1] or not terms[4] then
  return {'NOT_LOADED'}
end
local gen = tonumber(terms[4])

-- seqOf reads the sequence number out of a hold ("qty|user|ms|seq|key").
local function seqOf(value)
  return tonumber(string.match(value, '^%d+|%d+|%-?%d+|(%d+)|'))
end

-- The key comes first, before the window and the stock: a buyer retrying after the sale sold
-- out or ended must still find the order they placed.
if idemField ~= '' then
  local earlier = redis.call('HGET', idem, idemField)
  if earlier then
    local left = tonumber(redis.call('GET', stock))
    local value = redis.call('HGET', holds, order)
    if earlier == order and value then
      -- Our own reservation, resent after its reply was lost: it is not somebody else's.
      return {'OK', left, seqOf(value), gen}
    end
    return {'DUPLICATE', earlier, left, gen}
  end
end
local resent = redis.call('HGET', holds, order)
if resent then
  -- A resent reservation without a key: the order already holds its units.
  return {'OK', tonumber(redis.call('GET', stock)), seqOf(resent), gen}
end

-- Every reservation asked of the pool counts towards its conversion rate, whatever the answer;
-- retries of one already made (above) do not.
redis.call('INCR', attempts)

-- The window is judged by this server's clock, the one clock every API replica shares.
-- Zero bounds mean the pool is always open.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local starts, ends, limit = tonumber(terms[1]), tonumber(terms[2]), tonumber(terms[3])
if starts > 0 and now < starts then
  return {'NOT_STARTED'}
end
if ends > 0 and now >= ends then
  return {'ENDED'}
end

-- The limit counts what the buyer holds now, so units released by a cancelled or expired
-- order may be bought again.
if limit > 0 then
  local held = tonumber(redis.call('HGET', bought, user) or '0')
  if held + qty > limit then
    return {'LIMIT_EXCEEDED', limit, held}
  end
end

local left = tonumber(redis.call('GET', stock))
if left < qty then
  return {'SOLD_OUT', left}
end

left = redis.call('DECRBY', stock, qty)
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('HINCRBY', bought, user, qty)
redis.call('HSET', holds, order, head .. '|' .. seq .. '|' .. key)
if idemField ~= '' then
  redis.call('HSET', idem, idemField, order)
end
return {'OK', left, seq, gen}
