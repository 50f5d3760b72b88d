package fsm_test

import (
	"testing"

	"github.com/metasrv/metasrv/fsm"
)

func TestSchedulable(t *testing.T) {
	cases := []struct {
		admin string
		alive bool
		want  bool
	}{
		{fsm.AdminActive, true, true},
		{"", true, true}, // written before admin states existed: active
		{fsm.AdminCordoned, true, false},
		{fsm.AdminDraining, true, false},
		{"unheard-of", true, false}, // anything but active keeps regions away
		{fsm.AdminActive, false, false},
		{"", false, false},
		{fsm.AdminCordoned, false, false},
		{fsm.AdminDraining, false, false},
	}
	for _, tc := range cases {
		d := fsm.Datanode{ID: 7, Addr: "10.0.0.7:4001", AdminState: tc.admin}
		if got := fsm.Schedulable(d, tc.alive); got != tc.want {
			t.Errorf("Schedulable(admin_state %q, alive %t) = %t, want %t", tc.admin, tc.alive, got, tc.want)
		}
	}
}
