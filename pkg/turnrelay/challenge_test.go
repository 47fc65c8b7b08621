package turnrelay

import (
	"testing"

	"github.com/pion/stun/v4"
)

// TestBareError: only pion's bare refusals (ERROR-CODE without reason, or its 420 with
// UNKNOWN-ATTRIBUTES) are recognised for replacement.
func TestBareError(t *testing.T) {
	errType := stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse)
	build := func(setters ...stun.Setter) []byte {
		t.Helper()
		m, err := stun.Build(append([]stun.Setter{stun.TransactionID, errType}, setters...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	tests := []struct {
		name string
		msg  []byte
		code int
		ok   bool
	}{
		{"bare 400", build(&stun.ErrorCodeAttribute{Code: stun.CodeBadRequest}), 400, true},
		{"bare 508", build(&stun.ErrorCodeAttribute{Code: stun.CodeInsufficientCapacity}), 508, true},
		{"420 with UNKNOWN-ATTRIBUTES", build(&stun.ErrorCodeAttribute{Code: stun.CodeUnknownAttribute},
			&stun.UnknownAttributes{stun.AttrDontFragment}), 420, true},
		{"420 listing two attributes", build(&stun.ErrorCodeAttribute{Code: stun.CodeUnknownAttribute},
			&stun.UnknownAttributes{stun.AttrDontFragment, stun.AttrEvenPort}), 420, true},
		{"reason text", build(&stun.ErrorCodeAttribute{Code: stun.CodeBadRequest, Reason: []byte("Bad Request")}), 0, false},
		{"other attribute after", build(&stun.ErrorCodeAttribute{Code: stun.CodeBadRequest}, stun.NewRealm("r")), 0, false},
		{"fingerprinted", build(&stun.ErrorCodeAttribute{Code: stun.CodeBadRequest}, stun.Fingerprint), 0, false},
		{"success", func() []byte {
			m := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse))
			return m.Raw
		}(), 0, false},
		{"truncated", build(&stun.ErrorCodeAttribute{Code: stun.CodeBadRequest})[:27], 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ok := bareError(tt.msg)
			if ok != tt.ok || code != tt.code {
				t.Fatalf("bareError = %d, %v; want %d, %v", code, ok, tt.code, tt.ok)
			}
		})
	}
}
