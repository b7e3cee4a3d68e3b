-- SetQuantity changes a pool's quantity, keeping its holds.
--
-- KEYS: meta, stock, holds, bought, idem, attempts
-- ARGV: new quantity
--
-- Returns {"OK", remaining}, {"CONFLICT", units held} or {"NOT_LOADED"}.
local meta, stock = KEYS[1], KEYS[2]
local quantity = tonumber(ARGV[1])

local old, gen = unpack(redis.call('HMGET', meta, 'quantity', 'gen'))
if not old or not gen then
  return {'NOT_LOADED'}
end
-- Every script keeps stock = quantity - sum of holds, so the units held come from two reads
-- instead of a walk over a holds hash that may be large.
local held = tonumber(old) - tonumber(redis.call('GET', stock))
if quantity < held then
  return {'CONFLICT', held}
end
redis.call('HSET', meta, 'quantity', quantity)
redis.call('SET', stock, quantity - held)
return {'OK', quantity - held}
