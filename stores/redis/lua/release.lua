-- Release gives an order's units back, at most once.
--
-- KEYS: meta, stock, holds, bought, idem, attempts
-- ARGV: order id, and "forget" to also forget the order's idempotency key (Abandon)
--
-- Returns {"RELEASED", remaining}, {"UNKNOWN", remaining} when the order holds nothing
-- (never reserved, or already released), or {"NOT_LOADED"}.
--
-- The idem entry stays, unless asked to forget it: a released order normally still exists
-- (cancelled or expired), and a retry of its key must find it rather than buy again. An
-- abandoned order was never written, so its key is forgotten and a retry may buy anew.
local meta, stock, holds, bought, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local order, forget = ARGV[1], ARGV[2] == 'forget'

if not redis.call('HGET', meta, 'gen') then
  return {'NOT_LOADED'}
end

local hold = redis.call('HGET', holds, order)
if not hold then
  return {'UNKNOWN', tonumber(redis.call('GET', stock))}
end
redis.call('HDEL', holds, order)

-- A hold is "qty|user id|unix ms|seq|idempotency key"; the user id stays a string.
local qty, user, key = string.match(hold, '^(%d+)|(%d+)|%-?%d+|%d+|(.*)$')
qty = tonumber(qty)
if forget and key then
  local field = user .. '|' .. key
  if redis.call('HGET', idem, field) == order then
    redis.call('HDEL', idem, field)
  end
end
local left = redis.call('INCRBY', stock, qty)
if redis.call('HINCRBY', bought, user, -qty) <= 0 then
  -- Buyers with nothing held take no room.
  redis.call('HDEL', bought, user)
end
return {'RELEASED', left}
