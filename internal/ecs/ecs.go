// Package ecs holds what every event mmaptail ships says about where it
// comes from, in the Elastic Common Schema's names, so that log events and
// counter events share one shape in one index:
//
//	"host":  {"name": the host name}
//	"agent": {"name": the host name, "type": "mmaptail", "version": the build's version}
//	"ecs":   {"version": Version}
//
// host.name is an object member everywhere (ECS maps host as an object; a
// string "host" in one event and an object in another conflict in an
// Elasticsearch mapping). agent.name follows Filebeat, whose default name is
// the host name.
package ecs

import (
	"runtime/debug"
	"sync"

	"github.com/mmaplog/mmaplog/internal/jsonenc"
)

// Version is the ECS version the events follow (ecs.version).
const Version = "8.11.0"

// AgentType is agent.type.
const AgentType = "mmaptail"

// modulePath is the module whose version is agent.version.
const modulePath = "github.com/mmaplog/mmaplog"

// AgentVersion returns agent.version: the version of the mmaplog module in
// this binary's build information (a release tag such as v1.2.0, or a
// pseudo-version), or for a build from a work tree "devel" followed by the
// VCS revision when the build recorded one ("devel+1a2b3c4d5e6f", with
// "-dirty" for uncommitted changes).
func AgentVersion() string {
	versionOnce.Do(func() { version = agentVersion(debug.ReadBuildInfo()) })
	return version
}

var (
	versionOnce sync.Once
	version     string
)

func agentVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "devel"
	}
	v := ""
	if bi.Main.Path == modulePath {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			v = d.Version
			if d.Replace != nil && d.Replace.Version != "" {
				v = d.Replace.Version
			}
		}
	}
	if v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel+" + rev
}

// AppendMembers appends the members this package describes, for the host
// name host, each preceded by a comma:
// ,"agent":{...},"ecs":{...},"host":{"name":...}
func AppendMembers(dst []byte, host string) []byte {
	dst = append(dst, `,"agent":{"name":`...)
	dst = jsonenc.AppendString(dst, host)
	dst = append(dst, `,"type":"`+AgentType+`","version":`...)
	dst = jsonenc.AppendString(dst, AgentVersion())
	dst = append(dst, `},"ecs":{"version":"`+Version+`"},"host":{"name":`...)
	dst = jsonenc.AppendString(dst, host)
	return append(dst, '}')
}

// Keys are the top-level member names AppendMembers writes.
var Keys = []string{"agent", "ecs", "host"}
