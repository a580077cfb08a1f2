"""Seeds a Trac environment with N tickets (a third of them with a comment): seed.py ENV N."""
import sys, random
from trac.env import Environment
from trac.ticket.model import Ticket
env = Environment(sys.argv[1])
random.seed(1)
words = "the of and to in is that for it as with was on be by this are at from or an have not".split()
def text(n): return " ".join(random.choice(words) for _ in range(n))
for i in range(int(sys.argv[2])):
    t = Ticket(env)
    t['summary'] = text(8); t['description'] = text(random.randint(50, 300))
    t['reporter'] = 'seed'; t['type'] = random.choice(['defect', 'enhancement', 'task'])
    t['status'] = 'new'; t['component'] = 'component1'; t['priority'] = 'major'
    t.insert()
    if i % 3 == 0:
        t.save_changes('seed', text(40))
print("seeded")
