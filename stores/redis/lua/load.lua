-- Load writes a whole pool, unless Redis has it already at the same or a later generation.
--
-- KEYS: meta, stock, holds, bought, idem, attempts
-- ARGV: quantity, starts_ms, ends_ms, limit, generation, seq, then five per hold:
--       order id, hold value, user id, quantity, idem field ("" for none)
--
-- Returns 1 if it wrote the pool, 0 if the pool was already there.
local meta, stock, holds, bought, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

-- A pool of an earlier generation is a stale copy (Redis put back from an older snapshot, or
-- a replica that lagged): it is replaced whole. A pool without a generation is replaced too.
local current = redis.call('HGET', meta, 'gen')
if current and tonumber(current) >= tonumber(ARGV[5]) then
  return 0
end
-- Leftovers of a pool whose meta is gone are not trusted: the pool is exactly what we load.
-- The attempts count is history, not state, and is kept.
redis.call('DEL', meta, stock, holds, bought, idem)

-- hsetAll writes a flat {field, value, ...} list in slices: unpack of a whole list of
-- thousands of holds would overflow Lua's C stack (about 8000 values).
local function hsetAll(key, list)
  for i = 1, #list, 1000 do
    redis.call('HSET', key, unpack(list, i, math.min(i + 999, #list)))
  end
end

local holdList, idemList, perUser, held = {}, {}, {}, 0
for i = 7, #ARGV, 5 do
  local order, value, user, qty, field = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
  holdList[#holdList + 1] = order
  holdList[#holdList + 1] = value
  perUser[user] = (perUser[user] or 0) + qty
  held = held + qty
  if field ~= '' then
    idemList[#idemList + 1] = field
    idemList[#idemList + 1] = order
  end
end
local boughtList = {}
for user, qty in pairs(perUser) do
  boughtList[#boughtList + 1] = user
  boughtList[#boughtList + 1] = qty
end

hsetAll(holds, holdList)
hsetAll(bought, boughtList)
hsetAll(idem, idemList)
redis.call('SET', stock, tonumber(ARGV[1]) - held)
-- gen comes last among the fields every script checks: a pool is whole once it has one.
redis.call('HSET', meta, 'quantity', ARGV[1], 'starts_ms', ARGV[2], 'ends_ms', ARGV[3], 'limit', ARGV[4],
  'seq', ARGV[6], 'gen', ARGV[5])
return 1
