/*
 * The pause process of the test pods: the first process of a pod sandbox, holding its
 * namespaces. It does nothing but wait for signals: SIGTERM or SIGINT end it, and as the
 * first process of its PID namespace it reaps the orphans handed to it.
 *
 * Built with `gcc -static` by tests/runtimes/containerd.sh; the image holds only this binary.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
    (void)sig;
    _exit(0);
}

static void on_child(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static void handle(int sig, void (*handler)(int), int flags)
{
    struct sigaction action;

    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, NULL);
}

int main(void)
{
    handle(SIGTERM, on_stop, 0);
    handle(SIGINT, on_stop, 0);
    handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART);
    for (;;)
        pause();
}
