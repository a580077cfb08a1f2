"""WSGI entry for calibration/trac: Trac's dispatcher on the environment beside this file (TRAC_ENV)."""
import os
os.environ.setdefault('TRAC_ENV', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'env'))
import trac.web.main
application = trac.web.main.dispatch_request
