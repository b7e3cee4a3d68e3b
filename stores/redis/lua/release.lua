-- Release gives an order's units back, at most once.
--
-- KEYS: meta, stock, holds, bought, idem, attempts
-- ARGV: order id
--
-- Returns {"RELEASED", remaining}, {"UNKNOWN", remaining} when the order holds nothing
-- (never reserved, or already released), or {"NOT_LOADED"}.
--
-- The idem entry stays: the order still exists (cancelled or expired), and a retry of its key
-- must find it rather than buy again.
local meta, stock, holds, bought = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local order = ARGV[1]

if redis.call('EXISTS', meta) == 0 then
  return {'NOT_LOADED'}
end

local hold = redis.call('HGET', holds, order)
if not hold then
  return {'UNKNOWN', tonumber(redis.call('GET', stock))}
end
redis.call('HDEL', holds, order)

-- A hold is "qty|user id|unix ms|idempotency key"; the user id stays a string.
local qty, user = string.match(hold, '^(%d+)|(%d+)|')
qty = tonumber(qty)
local left = redis.call('INCRBY', stock, qty)
if redis.call('HINCRBY', bought, user, -qty) <= 0 then
  -- Buyers with nothing held take no room.
  redis.call('HDEL', bought, user)
end
return {'RELEASED', left}
