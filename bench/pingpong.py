# Loopback TCP round trip between two processes (one byte each way, TCP_NODELAY):
# what waking another process costs on this machine. Usage: python3 bench/pingpong.py
import socket, os, time, statistics
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR,1); s.bind(('127.0.0.1',0)); s.listen(1); port=s.getsockname()[1]
if os.fork()==0:
    c,_=s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY,1)
    while True:
        d=c.recv(64)
        if not d: break
        c.sendall(d)
    os._exit(0)
c=socket.create_connection(('127.0.0.1',port)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY,1)
for mode in ['idle','idle']:
    lat=[]
    for i in range(5000):
        t=time.perf_counter(); c.sendall(b'x'); c.recv(64); lat.append((time.perf_counter()-t)*1e6)
    lat.sort(); print(mode, 'p50 %.0f us p99 %.0f us' % (lat[len(lat)//2], lat[int(len(lat)*0.99)]))
c.close()
