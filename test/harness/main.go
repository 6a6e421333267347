// Command harness is a multi-call binary holding an unmodified Kubernetes
// control plane for end-to-end tests:
//
//	harness etcd       [flags]  embedded etcd (go.etcd.io/etcd/server/v3/embed)
//	harness apiserver  [flags]  kube-apiserver      (upstream cobra command)
//	harness kcm        [flags]  kube-controller-manager
//	harness scheduler  [flags]  kube-scheduler
//	harness kubectl    [args]   kubectl
//	harness freeport N          print N free 127.0.0.1 TCP ports (for scripts)
//	harness version
//
// Each component must run in its own OS process: the upstream commands
// install process-wide signal handlers, logging configuration and feature
// gates, so only the selected command is ever constructed.
package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	_ "time/tzdata" // CronJob time-zone support, as upstream binaries do

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func usage() {
	fmt.Fprintf(os.Stderr, "usage: %s etcd|apiserver|kcm|scheduler|kubectl|freeport|version [args...]\n", filepath.Base(os.Args[0]))
}

func main() {
	// Multi-call: "harness <sub> args" or a symlink named after the subcommand.
	sub := filepath.Base(os.Args[0])
	args := os.Args[1:]
	switch sub {
	case "etcd", "apiserver", "kube-apiserver", "kcm", "kube-controller-manager", "scheduler", "kube-scheduler", "kubectl":
	default:
		if len(args) == 0 {
			usage()
			os.Exit(2)
		}
		sub, args = args[0], args[1:]
	}
	// Present the upstream commands with the argv they expect
	// (kubectl inspects os.Args for plugins and -v).
	os.Args = append([]string{sub}, args...)

	switch sub {
	case "etcd":
		os.Exit(runEtcd(args))
	case "apiserver", "kube-apiserver":
		os.Exit(runCobra(apiserverapp.NewAPIServerCommand(), args))
	case "kcm", "kube-controller-manager":
		os.Exit(runCobra(kcmapp.NewControllerManagerCommand(), args))
	case "scheduler", "kube-scheduler":
		os.Exit(runCobra(schedulerapp.NewSchedulerCommand(), args))
	case "kubectl":
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) // nolint:errcheck
		command := kubectlcmd.NewDefaultKubectlCommand()
		command.SetArgs(args)
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
	case "freeport":
		os.Exit(freePorts(args))
	case "version", "--version", "-version":
		printVersions()
	default:
		usage()
		os.Exit(2)
	}
}

func runCobra(cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

func printVersions() {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Println("no build info")
		return
	}
	fmt.Printf("go: %s\n", bi.GoVersion)
	for _, d := range bi.Deps {
		if d.Path == "k8s.io/kubernetes" || strings.HasPrefix(d.Path, "go.etcd.io/etcd/server") {
			v := d.Version
			if d.Replace != nil {
				v = d.Replace.Version
			}
			fmt.Printf("%s: %s\n", d.Path, v)
		}
	}
}

// freePorts prints N distinct free TCP ports on 127.0.0.1, one per line.
// All listeners are held open until every port is chosen, so the N ports differ.
func freePorts(args []string) int {
	n := 1
	if len(args) > 0 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 || v > 64 {
			fmt.Fprintln(os.Stderr, "freeport: N must be 1..64")
			return 2
		}
		n = v
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "freeport:", err)
			return 1
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return 0
}
