package redis

import (
	_ "embed"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"
)

// The scripts, one per Inventory operation. Each script does all of its operation's checks
// and writes, so no other client ever sees a pool half changed.
var (
	//go:embed lua/reserve.lua
	reserveLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/load.lua
	loadLua string
	//go:embed lua/set_quantity.lua
	setQuantityLua string
	//go:embed lua/repair.lua
	repairLua string
)

// scripts are an Inventory's compiled scripts. goredis.Script.Run sends EVALSHA and falls
// back to EVAL when the server lacks the script (a restart, SCRIPT FLUSH).
type scripts struct {
	reserve, release, load, setQuantity, repair *goredis.Script
}

func newScripts() scripts {
	return scripts{
		reserve:     goredis.NewScript(reserveLua),
		release:     goredis.NewScript(releaseLua),
		load:        goredis.NewScript(loadLua),
		setQuantity: goredis.NewScript(setQuantityLua),
		repair:      goredis.NewScript(repairLua),
	}
}

// reply is a script's answer: a status word and its values, e.g. {"SOLD_OUT", 0}.
type reply []any

func toReply(v any) (reply, error) {
	r, ok := v.([]any)
	if !ok || len(r) == 0 {
		return nil, fmt.Errorf("unexpected script reply %#v", v)
	}
	if _, ok := r[0].(string); !ok {
		return nil, fmt.Errorf("unexpected script reply %#v", v)
	}
	return r, nil
}

func (r reply) status() string { return r[0].(string) }

// int returns the i-th value as an int; Lua numbers arrive as integers, Lua strings as
// strings (ids, which Lua must not turn into numbers).
func (r reply) int(i int) (int64, error) {
	if i >= len(r) {
		return 0, fmt.Errorf("script reply %v has no value %d", []any(r), i)
	}
	switch v := r[i].(type) {
	case int64:
		return v, nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, fmt.Errorf("script reply %v: value %d is %T", []any(r), i, r[i])
}
