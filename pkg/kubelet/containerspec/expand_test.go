package containerspec

import (
	"reflect"
	"testing"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{
		"VAR_A":     "A",
		"VAR_B":     "B",
		"VAR_C":     "C",
		"VAR_REF":   "$(VAR_A)",
		"VAR_EMPTY": "",
	}
	for _, tc := range []struct{ name, in, want string }{
		{"whole string", "$(VAR_A)", "A"},
		{"repeat", "$(VAR_A)-$(VAR_A)", "A-A"},
		{"middle", "___$(VAR_B)___", "___B___"},
		{"compound", "$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"},
		{"escape and expand", "$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"},
		{"compound escape", "$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"},
		{"escape before bare name", "f000-$$VAR_A", "f000-$VAR_A"},
		{"backslash is no escape", `foo\$(VAR_C)bar`, `foo\Cbar`},
		{"nested reference", "$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"},
		{"nested unterminated", "$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"},
		{"value is not expanded again", "$(VAR_REF)", "$(VAR_A)"},
		{"empty value", "foo$(VAR_EMPTY)bar", "foobar"},
		{"unterminated", "foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"},
		{"no operator", "f00__(VAR_A)__", "f00__(VAR_A)__"},
		{"shell specials", "$?_boo_$!", "$?_boo_$!"},
		{"bare name", "$VAR_A", "$VAR_A"},
		{"undefined kept", "$(VAR_DNE)", "$(VAR_DNE)"},
		{"empty name kept", "$()", "$()"},
		{"even operators undefined", "$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"},
		{"even operators defined", "$$$$$$(VAR_A)", "$$$(VAR_A)"},
		{"odd operators undefined", "$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"},
		{"odd operators defined", "$$$$$$$(VAR_A)", "$$$A"},
		{"missing opener", "$VAR_A)", "$VAR_A)"},
		{"shell braces", "${VAR_A}", "${VAR_A}"},
		{"trailing incomplete", "$(VAR_B)_______$(A", "B_______$(A"},
		{"trailing opener", "$(VAR_C)_______$(", "C_______$("},
		{"operator at end", "$(VAR_A)foobarzab$", "Afoobarzab$"},
		{"many openers", "--$($($($($--", "--$($($($($--"},
		{"many openers then escape", "$(foo$$", "$(foo$"},
		{"first closer ends the name", "$($(VAR_A)", "$($(VAR_A)"},
		{"escaped operator inside name", "$(foo$$var)", "$(foo$$var)"},
		{"utf-8 after operator", "prefix-$€-suffix", "prefix-$€-suffix"},
		{"newline", "\n", "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Expand(tc.in, lookupIn(vars)); got != tc.want {
				t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestExpandCommand(t *testing.T) {
	env := []EnvVar{{"A", "1"}, {"B", "two words"}, {"A", "last wins"}}
	cmd, args := ExpandCommand([]string{"/bin/$(A)"}, []string{"$(B)", "$$(B)", "$(C)"}, env)
	if want := []string{"/bin/last wins"}; !reflect.DeepEqual(cmd, want) {
		t.Errorf("command = %q, want %q", cmd, want)
	}
	if want := []string{"two words", "$(B)", "$(C)"}; !reflect.DeepEqual(args, want) {
		t.Errorf("args = %q, want %q", args, want)
	}
	cmd, args = ExpandCommand(nil, []string{}, env)
	if cmd != nil || args != nil {
		t.Errorf("empty command/args = %q %q, want nil (the image's entrypoint)", cmd, args)
	}
}
