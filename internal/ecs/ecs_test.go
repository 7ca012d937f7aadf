package ecs

import (
	"encoding/json"
	"runtime/debug"
	"testing"
)

func TestAppendMembers(t *testing.T) {
	b := append([]byte(`{"a":1`), AppendMembers(nil, "web-\"1\"")...)
	b = append(b, '}')
	var ev struct {
		Host  struct{ Name string }
		Agent struct{ Name, Type, Version string }
		ECS   struct{ Version string }
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if ev.Host.Name != `web-"1"` || ev.Agent.Name != ev.Host.Name || ev.Agent.Type != "mmaptail" || ev.Agent.Version == "" || ev.ECS.Version != Version {
		t.Fatalf("%s", b)
	}
}

func TestAgentVersion(t *testing.T) {
	for _, c := range []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{&debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v1.2.0"}}, "v1.2.0"},
		{&debug.BuildInfo{Main: debug.Module{Path: "example.com/app", Version: "v0.1.0"}, Deps: []*debug.Module{{Path: modulePath, Version: "v1.3.1"}}}, "v1.3.1"},
		{&debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, "devel+0123456789ab-dirty"},
		{&debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, "devel"},
	} {
		if got := agentVersion(c.bi, true); got != c.want {
			t.Errorf("%+v: %q, want %q", c.bi.Main, got, c.want)
		}
	}
	if agentVersion(nil, false) != "devel" {
		t.Error("no build info")
	}
}
