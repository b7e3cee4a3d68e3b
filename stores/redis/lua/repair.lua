-- Repair makes a pool agree with itself and with PostgreSQL's quantity: the stock becomes
-- quantity - sum of holds and each buyer's count the sum of their holds.
--
-- KEYS: meta, stock, holds, bought, idem, attempts
-- ARGV: quantity
--
-- Returns {"OK", quantity changed, stock changed, buyers changed} (1 or 0 each), or
-- {"NOT_LOADED"}.
--
-- It reads every hold, which costs Redis about a millisecond per few thousand; it runs from
-- reconciliation, seconds apart, never on a buyer's path.
local meta, stock, holds, bought = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local quantity = tonumber(ARGV[1])

local old, gen = unpack(redis.call('HMGET', meta, 'quantity', 'gen'))
if not old or not gen then
  return {'NOT_LOADED'}
end

local held, perUser = 0, {}
for _, value in ipairs(redis.call('HVALS', holds)) do
  local qty, user = string.match(value, '^(%d+)|(%d+)|')
  qty = tonumber(qty)
  held = held + qty
  perUser[user] = (perUser[user] or 0) + qty
end

local quantityChanged, stockChanged, buyersChanged = 0, 0, 0
if tonumber(old) ~= quantity then
  redis.call('HSET', meta, 'quantity', quantity)
  quantityChanged = 1
end
if tonumber(redis.call('GET', stock)) ~= quantity - held then
  redis.call('SET', stock, quantity - held)
  stockChanged = 1
end

local recorded = redis.call('HGETALL', bought)
local seen = 0
for i = 1, #recorded, 2 do
  if tonumber(recorded[i + 1]) ~= perUser[recorded[i]] then
    buyersChanged = 1
  end
  seen = seen + 1
end
for _ in pairs(perUser) do
  seen = seen - 1
end
if buyersChanged == 1 or seen ~= 0 then
  buyersChanged = 1
  redis.call('DEL', bought)
  for user, qty in pairs(perUser) do
    redis.call('HSET', bought, user, qty)
  end
end
return {'OK', quantityChanged, stockChanged, buyersChanged}
