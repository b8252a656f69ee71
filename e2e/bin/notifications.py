#!/usr/bin/python3
"""A desktop notification service (org.freedesktop.Notifications) on the session bus a
test started, so a browser's notifications can be read and clicked for real.

Prints one JSON line per notification shown: {"id", "app", "summary", "body", "actions"}
(and "ready" once it owns the name). Reads commands on stdin: "invoke <id> <action>"
emits ActionInvoked (a person clicking that button; "default" is the notification
itself), then NotificationClosed. Ends when stdin closes. Debian's python3-dbus and
python3-gi; started by e2e/lib/notifications.mjs.
"""

import json
import sys
import threading

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


class Notifications(dbus.service.Object):
    def __init__(self, bus):
        super().__init__(bus, PATH)
        self.next_id = 1

    @dbus.service.method(NAME, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        nid = replaces or self.next_id
        self.next_id = max(self.next_id, nid) + 1
        pairs = [[str(actions[i]), str(actions[i + 1])] for i in range(0, len(actions) - 1, 2)]
        say({"id": int(nid), "app": str(app), "summary": str(summary), "body": str(body), "actions": pairs})
        return nid

    @dbus.service.method(NAME, in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        self.NotificationClosed(nid, 3)

    @dbus.service.method(NAME, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["actions", "body", "persistence"]

    @dbus.service.method(NAME, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("duet-test-notifications", "duet", "1", "1.2")

    @dbus.service.signal(NAME, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass

    @dbus.service.signal(NAME, signature="us")
    def ActionInvoked(self, nid, action):
        pass


def say(line):
    print(json.dumps(line), flush=True)


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    _name = dbus.service.BusName(NAME, bus)
    service = Notifications(bus)
    loop = GLib.MainLoop()

    def commands():
        for line in sys.stdin:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "invoke":
                nid, action = int(parts[1]), parts[2]

                def invoke(nid=nid, action=action):
                    service.ActionInvoked(nid, action)
                    service.NotificationClosed(nid, 2)
                    return False

                GLib.idle_add(invoke)
        GLib.idle_add(loop.quit)

    threading.Thread(target=commands, daemon=True).start()
    say("ready")
    loop.run()


if __name__ == "__main__":
    main()
