-- Reserve takes units of a pool for one order, or says why it cannot.
--
-- KEYS: meta, stock, holds, bought, idem, attempts
-- ARGV: order id, user id, quantity, now (unix ms), idem field ("" for none), hold value
--
-- Returns one of
--   {"OK", remaining}
--   {"DUPLICATE", earlier order id, remaining}
--   {"NOT_LOADED"} | {"NOT_STARTED"} | {"ENDED"}
--   {"LIMIT_EXCEEDED", limit, units the user holds}
--   {"SOLD_OUT", remaining}
local meta, stock, holds, bought, idem, attempts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local order, user, qty, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local idemField, hold = ARGV[5], ARGV[6]

-- Load writes every meta field at once, so a missing field means a missing pool.
local terms = redis.call('HMGET', meta, 'starts_ms', 'ends_ms', 'limit')
if not terms[1] then
  return {'NOT_LOADED'}
end

-- The key comes first, before the window and the stock: a buyer retrying after the sale sold
-- out or ended must still find the order they placed.
if idemField ~= '' then
  local earlier = redis.call('HGET', idem, idemField)
  if earlier then
    local left = tonumber(redis.call('GET', stock))
    if earlier == order then
      -- Our own reservation, resent after its reply was lost: it is not somebody else's.
      return {'OK', left}
    end
    return {'DUPLICATE', earlier, left}
  end
end
if redis.call('HEXISTS', holds, order) == 1 then
  -- A resent reservation without a key: the order already holds its units.
  return {'OK', tonumber(redis.call('GET', stock))}
end

-- Every reservation asked of the pool counts towards its conversion rate, whatever the answer;
-- retries of one already made (above) do not.
redis.call('INCR', attempts)

-- Zero bounds mean the pool is always open.
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
redis.call('HINCRBY', bought, user, qty)
redis.call('HSET', holds, order, hold)
if idemField ~= '' then
  redis.call('HSET', idem, idemField, order)
end
return {'OK', left}
