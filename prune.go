package flashsale

// PruneTable names a kind of row that is deleted once its retention has passed
// (workers/pruner decides when, the database adapter how).
type PruneTable string

// The kinds of rows pruned.
const (
	// PruneOutbox: outbox rows sent to every destination before the cutoff. A row not yet
	// sent to one of them is never deleted, however old.
	PruneOutbox PruneTable = "outbox"
	// PruneAnalyticsSeen: the analytics consumer's records of events counted before the cutoff.
	PruneAnalyticsSeen PruneTable = "analytics_seen"
	// PruneRefreshTokens: refresh tokens spent, revoked or expired before the cutoff.
	PruneRefreshTokens PruneTable = "refresh_tokens"
	// PruneRefreshFamilies: sign-ins begun before the cutoff that have no token left.
	PruneRefreshFamilies PruneTable = "refresh_families"
	// PruneReservations: the ledger's records of reservations made before the cutoff, but
	// each pool's highest, which numbers the pool's next rebuild. The pool remembers the
	// highest number pruned and refuses any reservation at or below it, so a stale copy of
	// a pool is still caught after its numbers' rows are gone.
	PruneReservations PruneTable = "pool_reservations"
)

// PruneTables are the kinds of rows pruned, in the order a pruner visits them.
var PruneTables = []PruneTable{PruneOutbox, PruneAnalyticsSeen, PruneRefreshTokens, PruneRefreshFamilies, PruneReservations}
