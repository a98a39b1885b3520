// Command mmifhealth computes what Argo CD and kstatus would show for Kubernetes objects, with
// the libraries those tools use: gopher-lua (Argo CD's Lua VM, set up as Argo CD sets it up) for
// the health.lua scripts, and sigs.k8s.io/cli-utils/pkg/kstatus/status (Flux, kpt) for kstatus.
//
//	mmifhealth lua HEALTH.lua OBJECT.yaml...   one JSON line per object: {"status","message"}
//	mmifhealth kstatus OBJECT.yaml...          one JSON line per object: {"status","message"}
//
// An OBJECT argument "-" reads one object (YAML or JSON) from stdin. Used by the project's tests
// (tests/unit/test_argocd_health.py, tests/e2e/test_health_kstatus.py), which build it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: mmifhealth lua SCRIPT OBJECT... | mmifhealth kstatus OBJECT...")
	}
	switch os.Args[1] {
	case "lua":
		if len(os.Args) < 4 {
			fail("usage: mmifhealth lua SCRIPT OBJECT...")
		}
		script, err := os.ReadFile(os.Args[2])
		check(err)
		for _, path := range os.Args[3:] {
			r, err := runLua(readObject(path), string(script))
			check(err)
			emit(r)
		}
	case "kstatus":
		for _, path := range os.Args[2:] {
			r, err := status.Compute(&unstructured.Unstructured{Object: readObject(path)})
			check(err)
			emit(result{Status: r.Status.String(), Message: r.Message})
		}
	default:
		fail("unknown command " + os.Args[1])
	}
}

func readObject(path string) map[string]interface{} {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	check(err)
	js, err := yaml.YAMLToJSON(data)
	check(err)
	// As the API machinery decodes objects: whole numbers are int64 (kstatus requires it).
	obj := map[string]interface{}{}
	check(utiljson.Unmarshal(js, &obj))
	return obj
}

// runLua runs a health script as Argo CD's util/lua VM does: no standard libraries but package,
// base, table and (a safe) os; the object as the global `obj`; a one-second budget; the script
// returns a table {status, message}.
func runLua(obj map[string]interface{}, script string) (result, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return result{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decode(l, obj))
	if err := l.DoString(script); err != nil {
		return result{}, err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return result{}, fmt.Errorf("the script returned %s, not a table", l.Get(-1).Type())
	}
	r := result{}
	if s, ok := ret.RawGetString("status").(lua.LString); ok {
		r.Status = string(s)
	}
	if m, ok := ret.RawGetString("message").(lua.LString); ok {
		r.Message = string(m)
	}
	switch r.Status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		return r, fmt.Errorf("the script returned status %q, which Argo CD does not know", r.Status)
	}
	return r, nil
}

// decode turns a JSON value into a Lua value as Argo CD's decodeValue does (arrays are 1-based
// tables).
func decode(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(float64(v))
	case map[string]interface{}:
		t := l.NewTable()
		for k, item := range v {
			t.RawSetString(k, decode(l, item))
		}
		return t
	case []interface{}:
		t := l.NewTable()
		for i, item := range v {
			t.RawSetInt(i+1, decode(l, item))
		}
		return t
	default:
		return lua.LString(fmt.Sprint(v))
	}
}

func emit(r result) {
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "mmifhealth:", msg)
	os.Exit(1)
}
